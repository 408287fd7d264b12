//! keepalived.conf files on disk: the example pair under etc/keepalived and
//! the seeds' files under tests/data/keepalived, through `load`.

use hbd::vrrp::conf::{lint_scripts, load, InitialState};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn example_pair_loads_clean() {
    for (node, prio) in [("node1", 105), ("node2", 100)] {
        let path = root()
            .join("etc/keepalived")
            .join(node)
            .join("keepalived.conf");
        let (conf, warnings) = load(&path).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(warnings.is_empty(), "{warnings:#?}");
        assert_eq!(conf.instances.len(), 2);
        for i in &conf.instances {
            assert_eq!(i.base_priority(), prio);
            assert_eq!(i.initial_state(&conf.global), InitialState::Backup);
            assert!(!i.preempt(&conf.global));
            assert_eq!(i.at.file, path);
        }
        // The notify script does not exist here: nothing to lint.
        assert!(lint_scripts(&conf)
            .iter()
            .all(|w| !w.message.contains("keepalived_state.sh")));
    }
}

#[test]
fn seed_004_loads_with_the_long_password_warning() {
    let path = root().join("tests/data/keepalived/seed004_scripts.conf");
    let (conf, warnings) = load(&path).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].key, "auth_pass");
    assert_eq!(conf.scripts.len(), 2);
}

#[test]
fn seed_000_as_published_is_refused_for_its_placeholders() {
    let path = root().join("tests/data/keepalived/seed000_smesql01.conf");
    let errors = load(&path).unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors
        .iter()
        .all(|e| e.to_string().contains("is a template placeholder")));
}
