//! `berth adopt`: the host's operator hands a docker compose project over to berth.

use std::sync::Arc;

use super::{exit, AdoptArgs, Output};
use crate::adopt::switch::{self, SwitchError};
use crate::adopt::{Order, SwitchPlan};
use crate::executor::Executor;
use crate::plan::Desired;
use crate::runtime::DockerEngine;

/// Plans the switch, prints it, and unless `--dry-run` carries it out: 0 switched and
/// converged, 1 a service failed (what compose ran of it runs again) or Docker failed,
/// 2 invalid input or usage.
pub(super) async fn run(args: &AdoptArgs) -> u8 {
    let c = &args.converge;
    let (dir, wait) = (c.state_dir.clone(), args.lock_timeout.into());
    // A dry run of a local file writes nothing; with --repo it updates the clone in
    // the state dir, which is the lock holder's.
    let _lock = if args.dry_run && args.source.repo.is_none() {
        None
    } else {
        match crate::agent::StateLock::acquire_async(dir, "adopt", wait).await {
            Ok(lock) => Some(lock),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILED;
            }
        }
    };
    let (spec, commit) = match super::source::load(
        &args.source,
        &args.host,
        &c.state_dir,
        exit::USAGE,
        // The operator's `--project` checks the file's project; it never names it, so
        // that a typo cannot take over another compose project under this file.
        None,
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let p = &args.project;
    if *p != spec.project {
        eprintln!(
            "error: --project {p}, but the desired state is project `{}`; berth adopts a compose project only under its own name (its volumes are `{p}_<name>`): set `name: {p}` in the compose file (or `project: {p}` in berth.yaml)",
            spec.project
        );
        return exit::USAGE;
    }
    let engine = match DockerEngine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let compose = match engine.compose_project(&spec.project).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    // Only the services placed on this host: one placed elsewhere is not started
    // here, so compose's container of it is left alone.
    let host = match args.host.host_with_keys() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let desired = Desired::resolve_for(spec, &host);
    let plan = SwitchPlan::new(&desired.spec, &compose);
    let drain: std::time::Duration = c.drain.into();
    if plan.is_empty() {
        eprintln!(
            "error: docker compose has no container, volume or network of project `{}` on this host (label com.docker.compose.project={}); nothing to adopt: `berth apply` starts the stack",
            desired.spec.project, desired.spec.project
        );
        return exit::FAILED;
    }
    let json = args.output == Output::Json;
    let print_json = |value: serde_json::Value| {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("plain data serializes")
        )
    };
    if !json {
        print!("{}", plan.render(drain));
    }
    if args.dry_run {
        if json {
            print_json(serde_json::json!({ "plan": plan, "dry_run": true }));
        } else {
            println!("dry run: nothing changed");
        }
        return exit::OK;
    }
    let mut opts = super::agent::apply_options(c, 1);
    opts.commit = commit.map(|i| i.sha);
    opts.host = Some(host.name.clone());
    opts.allow_host_paths = args.source.allow_host_path.clone();
    opts.served_elsewhere = plan
        .services
        .iter()
        .filter(|s| s.order == Order::StartFirst)
        .map(|s| s.service.clone())
        .collect();
    let ledger = match c.coordination.open(&c.state_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let engine: Arc<dyn crate::runtime::Engine> = Arc::new(engine);
    let executor = Executor::new(engine.clone(), ledger, opts);
    match switch::run(&plan, &desired, &executor, engine, &c.state_dir, drain).await {
        Ok(report) => {
            let converged = report.apply.as_ref().is_none_or(|a| a.converged());
            if json {
                print_json(serde_json::json!({
                    "plan": plan,
                    "switched": report.switched,
                    "apply": report.apply,
                }));
            } else {
                print!("{}", switch::render(&report));
                if let Some(apply) = &report.apply {
                    print!("{}", super::apply::render(apply));
                }
            }
            if converged {
                exit::OK
            } else {
                exit::FAILED
            }
        }
        Err(e) => {
            let done = match &e {
                SwitchError::Service { done, .. } => done.clone(),
                _ => Vec::new(),
            };
            if json {
                print_json(serde_json::json!({
                    "plan": plan,
                    "switched": done,
                    "error": e.to_string(),
                }));
            } else {
                print!(
                    "{}",
                    switch::render(&switch::SwitchReport {
                        switched: done,
                        apply: None,
                    })
                );
            }
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}
