//! hbd-compat: heartbeat's `cl_status`, `hb_standby` and `hb_takeover` for
//! the scripts that call them, chosen by the name it is called by (the
//! package links `/usr/bin/cl_status` and the others here).
//!
//! `hb_standby` and `hb_takeover` run `hbctl standby|takeover SCOPE
//! --no-wait` (heartbeat's commands only asked and returned; `failback` is
//! `foreign`, as in heartbeat). `cl_status` asks the daemon for its status
//! document and answers with heartbeat's words and exit codes: 0 ok (the
//! node is active, the link up), 1 a "normal" failure (the node is dead,
//! hbd is not running), 11 bad parameters, 12 no answer in time
//! (heartbeat's `cl_status` gave up after 5 s).
//!
//! `HBD_RUN_DIR` names another run directory (default /run/hbd) and
//! `HBD_HBCTL` another hbctl (default: next to this binary, else
//! /usr/sbin/hbctl).

use hbd::ctl::{self, Request, Response, Status};
use hbd::membership::{LinkState, NodeState};
use hbd::wire::GroupState;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// cl_status's exit codes (heartbeat's tools/cl_status.c).
const OK: u8 = 0;
const NORMAL_FAIL: u8 = 1;
const PARAMETER_ERROR: u8 = 11;
const TIMEOUT: u8 = 12;
const UNKNOWN_ERROR: u8 = 13;

/// How long cl_status waits for hbd (heartbeat's alarm(5)).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

const CL_STATUS_USAGE: &str = "\
Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands (heartbeat's, answered by hbd):
hbstatus [-v]                  is hbd running on this machine
listnodes [-p|-n]              the nodes (-n: cluster nodes only, -p: ping nodes only)
nodestatus <node-name>         active, dead or init; exit 0 when active
listhblinks [-v] <node-name>   the media to that node (-v: with their state)
hblinkstatus <node-name> <link-name>   up or dead; exit 0 when up
rscstatus                      which resources this node holds: all, local, foreign, none or transition
Option -m: human-readable sentences.
";

#[derive(Debug, PartialEq, Eq)]
enum Call {
    /// Run hbctl with these arguments (it prints and exits for us).
    Hbctl(Vec<String>),
    /// Ask the daemon and answer.
    Query { query: Query, human: bool },
    /// Print the usage and exit with this code.
    Usage { text: String, code: u8 },
}

#[derive(Debug, PartialEq, Eq)]
enum Query {
    HbStatus { verbose: bool },
    ListNodes { normal: bool, ping: bool },
    NodeStatus { node: String },
    ListHbLinks { node: String, verbose: bool },
    HbLinkStatus { node: String, link: String },
    RscStatus,
}

/// The command line of `name` (argv[0]'s file name) with `args`.
fn parse(name: &str, args: &[String]) -> Call {
    match name {
        "hb_standby" | "hb_takeover" => {
            let verb = if name == "hb_standby" {
                "standby"
            } else {
                "takeover"
            };
            let scope = match args {
                [] => "all",
                [a] => match a.as_str() {
                    "all" | "local" | "foreign" => a.as_str(),
                    // heartbeat: "failback" is "foreign".
                    "failback" => "foreign",
                    _ => return usage_of(name, NORMAL_FAIL),
                },
                _ => return usage_of(name, NORMAL_FAIL),
            };
            Call::Hbctl(vec![verb.into(), scope.into(), "--no-wait".into()])
        }
        "cl_status" => cl_status(args),
        _ => Call::Usage {
            text: format!(
                "hbd-compat: called as {name:?}; call it as cl_status, hb_standby or hb_takeover\n"
            ),
            code: PARAMETER_ERROR,
        },
    }
}

fn usage_of(name: &str, code: u8) -> Call {
    Call::Usage {
        text: format!("usage: {name} [all|foreign|local|failback]\n"),
        code,
    }
}

fn cl_status(args: &[String]) -> Call {
    let Some((sub, rest)) = args.split_first() else {
        return Call::Usage {
            text: CL_STATUS_USAGE.into(),
            code: OK,
        };
    };
    // getopt-style flags anywhere after the sub-command, the rest positional.
    let mut flags = String::new();
    let mut words = Vec::new();
    for a in rest {
        match a.strip_prefix('-') {
            Some(f) if !f.is_empty() => flags.push_str(f),
            _ => words.push(a.clone()),
        }
    }
    let human = flags.contains('m');
    let allowed = match sub.as_str() {
        "hbstatus" | "listhblinks" => "mv",
        "listnodes" => "mpnv",
        _ => "m",
    };
    if let Some(bad) = flags.chars().find(|c| !allowed.contains(*c)) {
        return Call::Usage {
            text: format!("cl_status: {sub}: invalid option -{bad}\n"),
            code: PARAMETER_ERROR,
        };
    }
    let needs = |n: usize| words.len() < n;
    let query = match sub.as_str() {
        "-h" | "--help" | "help" => {
            return Call::Usage {
                text: CL_STATUS_USAGE.into(),
                code: OK,
            }
        }
        "hbstatus" => Query::HbStatus {
            verbose: flags.contains('v'),
        },
        "listnodes" => {
            let (n, p) = (flags.contains('n'), flags.contains('p'));
            // heartbeat: both is neither.
            Query::ListNodes {
                normal: n && !p,
                ping: p && !n,
            }
        }
        "nodestatus" if !needs(1) => Query::NodeStatus {
            node: words[0].clone(),
        },
        "listhblinks" if !needs(1) => Query::ListHbLinks {
            node: words[0].clone(),
            verbose: flags.contains('v'),
        },
        "hblinkstatus" if !needs(2) => Query::HbLinkStatus {
            node: words[0].clone(),
            link: words[1].clone(),
        },
        "rscstatus" => Query::RscStatus,
        "nodestatus" | "listhblinks" | "hblinkstatus" => {
            return Call::Usage {
                text: "Not enough parameters.\n".into(),
                code: PARAMETER_ERROR,
            }
        }
        other => {
            return Call::Usage {
                text: format!(
                    "cl_status: {other}: invalid sub-command (hbd answers hbstatus, listnodes, \
                     nodestatus, listhblinks, hblinkstatus, rscstatus)\n"
                ),
                code: PARAMETER_ERROR,
            }
        }
    };
    Call::Query { query, human }
}

/// heartbeat's word for a node's state.
fn node_word(s: NodeState) -> &'static str {
    match s {
        NodeState::Up => "active",
        NodeState::Dead => "dead",
        // Not heard yet, within initdead: heartbeat's "init".
        NodeState::Unknown => "init",
    }
}

fn link_word(s: LinkState) -> &'static str {
    match s {
        LinkState::Up => "up",
        LinkState::Dead | LinkState::Unknown => "dead",
    }
}

/// What cl_status prints (stdout, stderr) and its exit code, from the
/// daemon's status document.
fn answer(query: &Query, human: bool, s: &Status) -> (String, String, u8) {
    let mut out = String::new();
    let find = |name: &str| s.nodes.iter().find(|n| n.name.eq_ignore_ascii_case(name));
    match query {
        Query::HbStatus { verbose } => {
            out.push_str("Heartbeat is running on this machine.\n");
            if *verbose {
                out.push_str(&format!(
                    "version:\thbd {}\nmanaged by:\t\"haresources\"\n",
                    s.version
                ));
                for n in &s.nodes {
                    out.push_str(&format!(
                        "\n{}\t{}\t(nodetype: normal)\n",
                        n.name,
                        node_word(n.state)
                    ));
                    for l in &n.links {
                        out.push_str(&format!("\t{}\t{}\n", l.medium, link_word(l.state)));
                    }
                }
            }
            (out, String::new(), OK)
        }
        Query::ListNodes { normal, ping } => {
            if human {
                out.push_str("The nodes are as follow:\n");
            }
            if !ping {
                for n in &s.nodes {
                    out.push_str(&format!("{}\n", n.name));
                }
            }
            if !normal {
                for p in &s.ping_nodes {
                    out.push_str(&format!("{}\n", p.name));
                }
            }
            (out, String::new(), OK)
        }
        Query::NodeStatus { node } => {
            let (word, code) = if let Some(n) = find(node) {
                let code = if n.state == NodeState::Up {
                    OK
                } else {
                    NORMAL_FAIL
                };
                (node_word(n.state), code)
            } else if let Some(p) = s.ping_nodes.iter().find(|p| p.name == *node) {
                match p.state {
                    ctl::PingState::Up => ("ping", OK),
                    _ => ("dead", NORMAL_FAIL),
                }
            } else {
                return (
                    String::new(),
                    "Error. May be due to incorrect node name\n".into(),
                    PARAMETER_ERROR,
                );
            };
            if human {
                out.push_str(&format!("The cluster node {node} is {word}\n"));
            } else {
                out.push_str(&format!("{word}\n"));
            }
            (out, String::new(), code)
        }
        Query::ListHbLinks { node, verbose } => {
            let Some(n) = find(node) else {
                return (
                    String::new(),
                    "Error. May be due to incorrect node name\n".into(),
                    PARAMETER_ERROR,
                );
            };
            if human {
                out.push_str("\tthis node has the following heartbeat links:\n");
            }
            for l in &n.links {
                if *verbose {
                    out.push_str(&format!("\t{}\t{}\n", l.medium, link_word(l.state)));
                } else {
                    out.push_str(&format!("\t{}\n", l.medium));
                }
            }
            (out, String::new(), OK)
        }
        Query::HbLinkStatus { node, link } => {
            let Some(n) = find(node) else {
                return (
                    String::new(),
                    "Error. May be due to incorrect node name\n".into(),
                    PARAMETER_ERROR,
                );
            };
            // heartbeat named a link by its interface (eth0); hbd by its
            // medium (bcast eth0): either names it.
            let Some(l) = n.links.iter().find(|l| {
                l.medium == *link || l.medium.split_whitespace().nth(1) == Some(link.as_str())
            }) else {
                return (
                    String::new(),
                    format!(
                        "Cannot get heartbeat link status: node {} has no link {link:?}\n",
                        n.name
                    ),
                    UNKNOWN_ERROR,
                );
            };
            let word = link_word(l.state);
            if human {
                out.push_str(&format!(
                    "The node {node}'s heartbeat link {link} is {word}\n"
                ));
            } else {
                out.push_str(&format!("{word}\n"));
            }
            (
                out,
                String::new(),
                if l.state == LinkState::Up {
                    OK
                } else {
                    NORMAL_FAIL
                },
            )
        }
        Query::RscStatus => {
            let word = rsc_status(s);
            if human {
                out.push_str(&format!("This node is holding {word} resources.\n"));
            } else {
                out.push_str(&format!("{word}\n"));
            }
            (out, String::new(), OK)
        }
    }
}

/// heartbeat's resource status of this node: `transition` while a group
/// starts or stops here, else which groups it holds — `all`, `local`
/// (only groups whose home it is), `foreign` (only others') or `none`.
fn rsc_status(s: &Status) -> &'static str {
    let me = &s.node;
    if s.groups
        .iter()
        .any(|g| matches!(g.local, GroupState::Starting | GroupState::Stopping))
    {
        return "transition";
    }
    let held = |local: bool| {
        s.groups
            .iter()
            .any(|g| g.local == GroupState::Started && g.home.eq_ignore_ascii_case(me) == local)
    };
    match (held(true), held(false)) {
        (true, true) => "all",
        (true, false) => "local",
        (false, true) => "foreign",
        (false, false) => "none",
    }
}

/// hbctl: `$HBD_HBCTL`, else next to this binary (a cargo build), else
/// /usr/sbin/hbctl (the package), else on PATH.
fn hbctl() -> PathBuf {
    if let Some(p) = std::env::var_os("HBD_HBCTL") {
        return p.into();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join("hbctl");
        if p.exists() {
            return p;
        }
    }
    let installed = PathBuf::from("/usr/sbin/hbctl");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("hbctl")
}

fn run_dir() -> PathBuf {
    std::env::var_os("HBD_RUN_DIR").map_or_else(|| PathBuf::from("/run/hbd"), PathBuf::from)
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_else(|| OsString::from("cl_status"));
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<String> = argv.map(|a| a.to_string_lossy().into_owned()).collect();
    match parse(&name, &args) {
        Call::Usage { text, code } => {
            if code == OK {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            ExitCode::from(code)
        }
        Call::Hbctl(words) => {
            let bin = hbctl();
            let err = std::process::Command::new(&bin)
                .arg("--run-dir")
                .arg(run_dir())
                .args(&words)
                .exec();
            eprintln!("{name}: cannot run {}: {err}", bin.display());
            ExitCode::from(NORMAL_FAIL)
        }
        Call::Query { query, human } => {
            let socket = ctl::socket_path(&run_dir());
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cl_status: {e}");
                    return ExitCode::from(UNKNOWN_ERROR);
                }
            };
            let response = rt.block_on(ctl::call_within(&socket, Request::Status, CALL_TIMEOUT));
            let status = match response {
                Ok(Response::Status(s)) => s,
                Ok(Response::Error { message, .. }) => {
                    eprintln!("cl_status: {message}");
                    return ExitCode::from(NORMAL_FAIL);
                }
                Ok(other) => {
                    eprintln!("cl_status: unexpected answer from hbd: {other:?}");
                    return ExitCode::from(UNKNOWN_ERROR);
                }
                // No daemon: heartbeat's sentence for hbstatus, which
                // scripts match; a "normal" failure for the rest.
                Err(e @ ctl::CallError::Connect { .. }) => {
                    if matches!(query, Query::HbStatus { .. }) {
                        println!("Heartbeat is stopped on this machine.");
                    } else {
                        eprintln!("cl_status: Cannot signon with heartbeat: {e}");
                    }
                    return ExitCode::from(NORMAL_FAIL);
                }
                Err(e @ ctl::CallError::Timeout { .. }) => {
                    eprintln!("cl_status: {e}");
                    return ExitCode::from(TIMEOUT);
                }
                Err(e) => {
                    eprintln!("cl_status: {e}");
                    return ExitCode::from(NORMAL_FAIL);
                }
            };
            let (out, err, code) = answer(&query, human, &status);
            print!("{out}");
            eprint!("{err}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, args: &[&str]) -> Call {
        parse(
            name,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    fn hbctl_args(v: &[&str]) -> Call {
        Call::Hbctl(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn standby_and_takeover_map_to_hbctl() {
        assert_eq!(
            p("hb_standby", &[]),
            hbctl_args(&["standby", "all", "--no-wait"])
        );
        assert_eq!(
            p("hb_standby", &["local"]),
            hbctl_args(&["standby", "local", "--no-wait"])
        );
        assert_eq!(
            p("hb_standby", &["failback"]),
            hbctl_args(&["standby", "foreign", "--no-wait"])
        );
        assert_eq!(
            p("hb_takeover", &["foreign"]),
            hbctl_args(&["takeover", "foreign", "--no-wait"])
        );
        assert_eq!(
            p("hb_takeover", &["all"]),
            hbctl_args(&["takeover", "all", "--no-wait"])
        );
        assert!(matches!(
            p("hb_takeover", &["bogus"]),
            Call::Usage {
                code: NORMAL_FAIL,
                ..
            }
        ));
        assert!(matches!(
            p("hb_standby", &["all", "x"]),
            Call::Usage {
                code: NORMAL_FAIL,
                ..
            }
        ));
        assert!(matches!(
            p("hbd-compat", &[]),
            Call::Usage {
                code: PARAMETER_ERROR,
                ..
            }
        ));
    }

    #[test]
    fn cl_status_forms() {
        let q = |args: &[&str]| match p("cl_status", args) {
            Call::Query { query, human } => (query, human),
            c => panic!("{c:?}"),
        };
        assert_eq!(
            q(&["hbstatus"]),
            (Query::HbStatus { verbose: false }, false)
        );
        assert_eq!(
            q(&["hbstatus", "-v"]),
            (Query::HbStatus { verbose: true }, false)
        );
        assert_eq!(
            q(&["listnodes"]),
            (
                Query::ListNodes {
                    normal: false,
                    ping: false
                },
                false
            )
        );
        assert_eq!(
            q(&["listnodes", "-n"]),
            (
                Query::ListNodes {
                    normal: true,
                    ping: false
                },
                false
            )
        );
        assert_eq!(
            q(&["listnodes", "-p", "-n"]),
            (
                Query::ListNodes {
                    normal: false,
                    ping: false
                },
                false
            )
        );
        assert_eq!(
            q(&["nodestatus", "n2"]),
            (Query::NodeStatus { node: "n2".into() }, false)
        );
        assert_eq!(
            q(&["nodestatus", "-m", "n2"]),
            (Query::NodeStatus { node: "n2".into() }, true)
        );
        assert_eq!(
            q(&["hblinkstatus", "n2", "eth0"]),
            (
                Query::HbLinkStatus {
                    node: "n2".into(),
                    link: "eth0".into()
                },
                false
            )
        );
        assert_eq!(
            q(&["listhblinks", "-mv", "n2"]),
            (
                Query::ListHbLinks {
                    node: "n2".into(),
                    verbose: true
                },
                true
            )
        );
        assert_eq!(q(&["rscstatus"]), (Query::RscStatus, false));
        assert!(matches!(
            p("cl_status", &["nodestatus"]),
            Call::Usage {
                code: PARAMETER_ERROR,
                ..
            }
        ));
        assert!(matches!(
            p("cl_status", &["nodestatus", "-x", "n"]),
            Call::Usage {
                code: PARAMETER_ERROR,
                ..
            }
        ));
        assert!(matches!(
            p("cl_status", &["frob"]),
            Call::Usage {
                code: PARAMETER_ERROR,
                ..
            }
        ));
        assert!(matches!(p("cl_status", &[]), Call::Usage { code: OK, .. }));
    }
}
