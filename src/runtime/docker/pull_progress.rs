//! The engine's pull messages (one per layer and step: `Pulling fs layer`,
//! `Downloading` with bytes, `Download complete`, `Pull complete`, `Already exists`)
//! folded into one [`PullStatus`].

use std::collections::BTreeMap;

use crate::runtime::PullStatus;

#[derive(Debug, Clone, Copy, Default)]
struct Layer {
    bytes: u64,
    total: u64,
    done: bool,
}

/// The layers of one pull.
#[derive(Debug, Default)]
pub(super) struct Layers(BTreeMap<String, Layer>);

/// A layer ID as the engine sends it: 12 hex digits (other messages carry a tag).
fn is_layer(id: &str) -> bool {
    id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit())
}

impl Layers {
    /// Takes one message in; true when the status changed.
    pub(super) fn take(
        &mut self,
        id: &str,
        status: &str,
        current: Option<i64>,
        total: Option<i64>,
    ) -> bool {
        if !is_layer(id) {
            return false;
        }
        let before = self.0.get(id).copied();
        let layer = self.0.entry(id.to_string()).or_default();
        match status {
            "Downloading" => {
                layer.bytes = current.unwrap_or(0).max(0) as u64;
                layer.total = total.unwrap_or(0).max(0) as u64;
            }
            "Download complete" | "Verifying Checksum" => layer.bytes = layer.total,
            "Pull complete" | "Already exists" => {
                layer.bytes = layer.total;
                layer.done = true;
            }
            _ => {}
        }
        before.is_none_or(|b| b.bytes != layer.bytes || b.done != layer.done)
    }

    /// The pull as a whole.
    pub(super) fn status(&self) -> PullStatus {
        let mut s = PullStatus {
            layers: self.0.len() as u32,
            ..Default::default()
        };
        for l in self.0.values() {
            s.layers_done += u32::from(l.done);
            s.bytes += l.bytes;
            s.bytes_total += l.total;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_of_a_two_layer_pull_fold_into_layers_and_bytes() {
        let mut l = Layers::default();
        assert!(!l.take("v2", "Pulling from library/app", None, None));
        assert!(l.take("aaaaaaaaaaaa", "Pulling fs layer", None, None));
        assert!(l.take("bbbbbbbbbbbb", "Already exists", None, None));
        assert!(l.take("aaaaaaaaaaaa", "Downloading", Some(100), Some(400)));
        assert_eq!(
            l.status(),
            PullStatus {
                layers_done: 1,
                layers: 2,
                bytes: 100,
                bytes_total: 400
            }
        );
        assert!(!l.take("aaaaaaaaaaaa", "Downloading", Some(100), Some(400)));
        assert!(l.take("aaaaaaaaaaaa", "Download complete", None, None));
        assert!(!l.take("aaaaaaaaaaaa", "Extracting", Some(10), Some(400)));
        assert!(l.take("aaaaaaaaaaaa", "Pull complete", None, None));
        assert_eq!(
            l.status(),
            PullStatus {
                layers_done: 2,
                layers: 2,
                bytes: 400,
                bytes_total: 400
            }
        );
    }
}
