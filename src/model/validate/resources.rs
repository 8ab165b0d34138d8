//! A service's `resources`: the memory and CPU limits Docker enforces.

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::location::KeyPath;
use super::super::raw::{KnownKeys, RawResources};
use super::super::spec::Resources;
use super::super::units::{parse_size, UnitError};
use super::raw;
use super::scalars::{describe, scalar};

/// `resources`: `memory` from 6m (Docker's minimum) to 1t and `cpus` from 0.01 to 1024
/// cores; each is unlimited when left out.
pub(crate) fn resources(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Resources> {
    let raw: RawResources = raw(
        ctx,
        file,
        path,
        v,
        &KnownKeys::get().resources,
        "`resources`",
    )?;
    let memory = match &raw.memory {
        None => Some(None),
        Some(v) => {
            let p = path.key("memory");
            match scalar(v).map(|s| parse_size(&s)) {
                Some(Ok(n)) if (6 << 20..=1 << 40).contains(&n) => Some(Some(n)),
                Some(Ok(_)) | Some(Err(UnitError::TooLarge(_))) => {
                    ctx.error(
                        file,
                        &p,
                        "memory limit is out of range; use 6m to 1t (Docker's minimum is 6m)",
                    );
                    None
                }
                Some(Err(e)) => {
                    ctx.error(file, &p, e.to_string());
                    None
                }
                None => {
                    ctx.error(
                        file,
                        &p,
                        format!("expected a size such as `512m`; found {}", kind(v)),
                    );
                    None
                }
            }
        }
    };
    let cpus = match &raw.cpus {
        None => Some(None),
        Some(v) => {
            let p = path.key("cpus");
            match scalar(v).and_then(|s| s.parse::<f64>().ok()) {
                Some(c) if (0.01..=1024.0).contains(&c) => Some(Some(c)),
                Some(_) => {
                    ctx.error(file, &p, "cpus is out of range; use 0.01 to 1024 (cores)");
                    None
                }
                None => {
                    ctx.error(
                        file,
                        &p,
                        format!(
                            "expected a number of cores such as 0.5; found {}",
                            describe(v)
                        ),
                    );
                    None
                }
            }
        }
    };
    Some(Resources {
        memory: memory?,
        cpus: cpus?,
    })
}
