//! The order services converge in: by dependency level, each level after the one it
//! depends on, every service of a level at once.

use std::collections::HashMap;

use crate::plan::{Desired, Plan, ServicePlan};

/// The plans of the services, grouped so that each group depends only on earlier
/// groups.
pub(super) fn dependency_levels<'p>(
    desired: &Desired,
    the_plan: &'p Plan,
) -> Vec<Vec<&'p ServicePlan>> {
    let mut level: HashMap<String, usize> = HashMap::new();
    fn depth(
        name: &str,
        desired: &Desired,
        level: &mut HashMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(l) = level.get(name) {
            return *l;
        }
        let deps = desired
            .services
            .get(name)
            .map(|d| d.spec.depends_on.clone())
            .unwrap_or_default();
        // Validation rules out cycles; the guard only keeps a bad input from recursing forever.
        let l = if guard > 64 {
            0
        } else {
            deps.iter()
                .map(|d| depth(d, desired, level, guard + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        level.insert(name.to_string(), l);
        l
    }
    let mut levels: Vec<Vec<&ServicePlan>> = Vec::new();
    for sp in &the_plan.services {
        let l = depth(&sp.service, desired, &mut level, 0);
        if levels.len() <= l {
            levels.resize(l + 1, Vec::new());
        }
        levels[l].push(sp);
    }
    levels
}
