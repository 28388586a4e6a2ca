//! A scenario's `sysctl` keys, set inside slow motion's private hosts.

use super::{Scenario, ScenarioError};
use crate::model::Side;

impl Scenario {
    /// Sets the scenario's `sysctl` keys inside both private hosts (their namespaces only; the
    /// machine's stay). Returns what to tell: the settings made, and each key this kernel does
    /// not have (left out).
    pub fn apply_sysctl(
        &self,
        h: &crate::hosts::Hosts,
    ) -> crate::error::Result<Vec<crate::i18n::Said>> {
        if self.sysctl.is_empty() {
            return Ok(Vec::new());
        }
        let missing = self.set_sysctl(h)?;
        let set = self
            .sysctl
            .iter()
            .filter(|(k, _)| !missing.contains(k))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut notes = vec![crate::said!("run.sysctl_set", set = set)];
        notes.extend(
            missing
                .iter()
                .map(|k| crate::said!("run.sysctl_missing", key = k)),
        );
        Ok(notes)
    }

    /// Writes the `sysctl` keys in both hosts; the keys this kernel lacks.
    fn set_sysctl(&self, h: &crate::hosts::Hosts) -> Result<Vec<String>, ScenarioError> {
        let mut missing = Vec::new();
        for (key, value) in &self.sysctl {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            for side in [Side::Client, Side::Server] {
                match h.run_in(side, || std::fs::write(&path, value)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        missing.push(key.clone());
                        break;
                    }
                    Err(error) => {
                        return Err(ScenarioError::Sysctl {
                            key: key.clone(),
                            value: value.clone(),
                            side,
                            error,
                        });
                    }
                }
            }
        }
        Ok(missing)
    }
}
