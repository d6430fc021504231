//! `pmr logs`: the last lines of each file, then the live stream from the
//! daemon (app lines and pmr's own supervision events).

use super::args::LogsArgs;
use super::{out, outln, Ctx};
use crate::error::{Error, Result};
use crate::logs::tail::last_lines;
use crate::logs::Stream;
use crate::protocol::{Request, StreamItem};
use crate::supervisor::InstanceInfo;

fn matches(i: &InstanceInfo, target: Option<&str>) -> bool {
    match target {
        None | Some("all") => true,
        Some(t) => match t.parse::<u32>() {
            Ok(id) => i.id == id,
            Err(_) => i.name == t || i.namespace == t,
        },
    }
}

pub(super) fn run(ctx: &Ctx<'_>, a: LogsArgs) -> Result<()> {
    let s = ctx.style;
    let mut client = ctx.running_daemon()?;
    let all: Vec<InstanceInfo> = client.request_as(Request::List)?;
    let target = a.target.as_deref();
    let chosen: Vec<&InstanceInfo> = all.iter().filter(|i| matches(i, target)).collect();
    if chosen.is_empty() {
        if let Some(t) = target.filter(|t| *t != "all") {
            return Err(Error::NotFound(format!(
                "no app or id matches '{t}' (see pmr list)"
            )));
        }
    }
    let want_out = !a.err;
    let want_err = !a.out;
    let prefix = |name: &str, id: u32| {
        if a.raw {
            String::new()
        } else {
            s.app(name, &format!("{id}|{name:<10}| "))
        }
    };

    let mut shown = Vec::new();
    for i in &chosen {
        let files = [
            (want_out, &i.logs.out, Stream::Out),
            (want_err, &i.logs.err, Stream::Err),
        ];
        for (wanted, path, stream) in files {
            if !wanted || shown.contains(path) {
                continue;
            }
            shown.push(path.clone());
            let lines = last_lines(path, a.lines)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            if !a.raw {
                outln(&s.dim(&format!("{} last {} lines:", path.display(), a.lines)));
            }
            for l in lines {
                let text = if stream == Stream::Err { s.red(&l) } else { l };
                if !outln(&format!("{}{text}", prefix(&i.name, i.id))) {
                    return Ok(());
                }
            }
        }
    }
    if a.nostream {
        return Ok(());
    }
    if !a.raw {
        outln(&s.dim("following new lines (Ctrl-C to stop)"));
    }
    let names: Vec<String> = chosen.iter().map(|i| i.name.clone()).collect();
    let ids: Vec<u32> = chosen.iter().map(|i| i.id).collect();
    let whole_apps =
        matches!(target, None | Some("all")) || target.is_some_and(|t| t.parse::<u32>().is_err());
    let follows = |app: &str, id: u32| {
        matches!(target, None | Some("all"))
            || ids.contains(&id)
            || (whole_apps && names.iter().any(|n| n == app))
    };
    for item in client.subscribe(true, true)? {
        let ok = match item? {
            StreamItem::Log(l) if follows(&l.app, l.id) => {
                let wanted = match l.stream {
                    Stream::Out => want_out,
                    Stream::Err => want_err,
                };
                if !wanted {
                    continue;
                }
                let text = if l.stream == Stream::Err { s.red(&l.line) } else { l.line };
                out(&format!("{}{text}\n", prefix(&l.app, l.id)))
            }
            StreamItem::Event(e) if follows(&e.app, e.id) && !a.raw => {
                let tag = s.bold(&s.yellow("PMR"));
                outln(&format!("{tag} | {}#{}: {}", e.app, e.id, e.describe()))
            }
            StreamItem::Lagged(n) => outln(&s.yellow(&format!(
                "[pmr] this terminal fell behind: {n} lines were skipped here (the log files have them)"
            ))),
            _ => true,
        };
        if !ok {
            break;
        }
    }
    Ok(())
}
