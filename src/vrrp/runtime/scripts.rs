//! The scripts of the VRRP runtime: tracked `vrrp_script`s, notify scripts
//! (in transition order), failback gate checks, and [`run_command`], which
//! runs each through [`crate::process::run`].

use super::*;

/// Between TERM and KILL of a script that timed out.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// A notify script that runs longer is killed (keepalived never waits for
/// them; hbd runs them in order, so one must not hold the queue forever).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a `vrrp_script` every `interval`, feeding its result to `subs`.
pub(super) async fn run_script(
    s: conf::VrrpScript,
    user: Option<ScriptUser>,
    subs: Vec<mpsc::UnboundedSender<Event>>,
) {
    let interval = s.interval.max(Duration::from_millis(10));
    let timeout = s.effective_timeout().max(Duration::from_millis(10));
    let mut next = Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        next += interval;
        let ok = match run_command(&s.command.argv, user.as_ref(), timeout).await {
            Ok(0) => true,
            Ok(code) => {
                tracing::debug!(script = %s.name, code, "check failed");
                false
            }
            Err(e) => {
                tracing::info!(script = %s.name, error = %e, "check failed");
                false
            }
        };
        for tx in &subs {
            let _ = tx.send(Event::Script {
                name: s.name.clone(),
                ok,
            });
        }
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// Whose notify scripts: keepalived passes `INSTANCE NAME STATE PRIORITY`
/// to an instance's `notify`, `GROUP NAME STATE 0` to a sync group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Instance,
    Group,
}

/// Runs the notify scripts of one instance or sync group, one at a time,
/// in order.
pub(super) async fn notifier(
    kind: Kind,
    name: String,
    n: conf::Notifies,
    script_user: Option<ScriptUser>,
    mut rx: mpsc::UnboundedReceiver<(State, u8)>,
) {
    while let Some((state, priority)) = rx.recv().await {
        let specific = match state {
            State::Master => n.master.as_ref(),
            State::Backup => n.backup.as_ref(),
            State::Fault => n.fault.as_ref(),
            State::Stop => n.stop.as_ref(),
            State::Init => None,
        };
        let user = |s: &conf::Notify| s.user.clone().or_else(|| script_user.clone());
        if let Some(s) = specific {
            notify_one(&name, &s.command.argv, user(s).as_ref()).await;
        }
        if let Some(s) = &n.notify {
            let mut argv = s.command.argv.clone();
            match kind {
                Kind::Instance => argv.extend([
                    "INSTANCE".to_string(),
                    name.clone(),
                    state.as_str().to_string(),
                    priority.to_string(),
                ]),
                // keepalived 2.2.7 passes priority 0 for a group.
                Kind::Group => argv.extend([
                    "GROUP".to_string(),
                    name.clone(),
                    state.as_str().to_string(),
                    "0".to_string(),
                ]),
            }
            notify_one(&name, &argv, user(s).as_ref()).await;
        }
    }
}

/// Runs a failback gate's command every `interval`, telling the instance
/// whether the gate is open (exit 0 in time).
pub(super) async fn run_gate(gate: crate::config::GateResolved, tx: mpsc::UnboundedSender<Event>) {
    let mut next = Instant::now();
    let mut was: Option<bool> = None;
    loop {
        tokio::time::sleep_until(next).await;
        next += gate.interval;
        let open = match run_command(&gate.argv, None, gate.timeout).await {
            Ok(0) => true,
            Ok(code) => {
                tracing::debug!(instance = %gate.instance, code, "failback gate check failed");
                false
            }
            Err(e) => {
                tracing::debug!(instance = %gate.instance, error = %e, "failback gate check failed");
                false
            }
        };
        if was != Some(open) {
            tracing::info!(instance = %gate.instance, open, "failback gate {}", if open { "open" } else { "closed" });
            was = Some(open);
        }
        if tx.send(Event::Gate(open)).is_err() {
            return;
        }
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

async fn notify_one(instance: &str, argv: &[String], user: Option<&ScriptUser>) {
    match run_command(argv, user, NOTIFY_TIMEOUT).await {
        Ok(0) => tracing::debug!(instance, script = ?argv, "notify script done"),
        Ok(code) => tracing::warn!(instance, script = ?argv, code, "notify script failed"),
        Err(e) => tracing::warn!(instance, script = ?argv, error = %e, "notify script failed"),
    }
}

/// Runs `argv` (no shell) as `user` (root when none) with
/// [`crate::process::run`], its output to `/dev/null` as keepalived has it;
/// at `timeout` the group gets TERM, then KILL [`KILL_GRACE`] later. `Ok`:
/// the exit code.
pub async fn run_command(
    argv: &[String],
    user: Option<&ScriptUser>,
    timeout: Duration,
) -> Result<i32, ScriptError> {
    use crate::process::{self, Output};
    let Some(prog) = argv.first() else {
        return Err(ScriptError::Empty);
    };
    // Looked up off the loop: a stalled NSS must not stop the adverts.
    let account = match user {
        Some(u) => {
            let (name, group) = (u.user.clone(), u.group.clone());
            let what = format!("looking up user `{}`", u.user);
            let found = process::lookup(&what, move || account(&name, group.as_deref())).await?;
            Some(found?)
        }
        None => None,
    };
    let mut c = process::Command::new(prog)
        .args(&argv[1..])
        .output(Output::Discard)
        .timeout(timeout)
        .term_first(KILL_GRACE);
    if let Some((u, gid)) = account {
        c = c.user(Some(u)).gid(gid);
    }
    let out = match process::run(&c).await {
        Ok(out) => out,
        Err(source @ process::RunError::TimedOut { .. }) => {
            return Err(ScriptError::TimedOut {
                program: prog.clone(),
                source,
            })
        }
        Err(e) => return Err(ScriptError::Run(e)),
    };
    match out.signal {
        None => Ok(out.code),
        Some(signal) => Err(ScriptError::Killed {
            program: prog.clone(),
            signal,
        }),
    }
}

/// The account a script runs as: `user`, with `group`'s gid when given
/// (else the user's own). NSS: call it only through
/// [`crate::process::lookup`].
fn account(
    user: &str,
    group: Option<&str>,
) -> Result<(nix::unistd::User, nix::unistd::Gid), ScriptError> {
    use crate::process::LookupError;
    use nix::unistd::{Group, User};
    let pw = User::from_name(user)
        .map_err(|errno| LookupError::Nss {
            name: user.to_string(),
            errno,
        })?
        .ok_or_else(|| LookupError::NoUser(user.to_string()))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|errno| ScriptError::GroupLookup {
                    name: g.to_string(),
                    errno,
                })?
                .ok_or_else(|| ScriptError::NoGroup(g.to_string()))?
                .gid
        }
        None => pw.gid,
    };
    Ok((pw, gid))
}
