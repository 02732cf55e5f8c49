//! The registry: which papers and kernel suites a run knows, in execution order. The default
//! registry ([`Registry::default`]) is the only place in the harness that names a paper or a
//! kernel suite; everything else takes a [`Registry`] as a value, so a test can run its own.
//!
//! Architecture invariant: every unit id belongs to exactly one entry: a paper's units carry its
//! id as `paper`, a kernel suite's units are `kernels/<name>/...` with `paper = "kernels"`.

use std::collections::BTreeSet;

use anyhow::Result;
use claimbench_paper::{
    ArtifactSource, DataCard, DataEnv, DynPaper, Exec, Fallback, KernelSuite, Outcome, RunContext,
    RunsOn, Scale, UnitRecord, UnitSpec,
};

use crate::devices::Plan;
use crate::error::input_error;
use crate::kernel_suites::{
    cross_entropy, dora_linear, dpo_kernels, moe_layer, ppo, token_logprob,
};
use crate::store::Configs;

/// One registered entry.
pub enum Entry {
    /// A kernel's checks and benchmarks.
    Kernel(Box<dyn KernelSuite>),
    /// A reproduced paper.
    Paper(Box<dyn DynPaper>),
}

/// The papers and kernel suites of a run, in execution order.
pub struct Registry {
    entries: Vec<Entry>,
}

impl Default for Registry {
    /// Every paper and kernel suite of claimbench.
    fn default() -> Self {
        Registry::new(vec![
            Entry::Kernel(Box::new(token_logprob::TokenLogprob)),
            Entry::Kernel(Box::new(cross_entropy::CrossEntropy)),
            Entry::Kernel(Box::new(dpo_kernels::DpoLoss)),
            Entry::Kernel(Box::new(ppo::Ppo)),
            Entry::Paper(Box::new(claimbench_continual::paper::Continual)),
            Entry::Paper(Box::new(claimbench_dpo_ppo::paper::DpoPpo)),
            Entry::Kernel(Box::new(dora_linear::DoraLinear)),
            Entry::Paper(Box::new(claimbench_dora::paper::Dora)),
            Entry::Kernel(Box::new(moe_layer::MoeLayer)),
            Entry::Paper(Box::new(claimbench_mixtral::paper::Mixtral)),
        ])
    }
}

impl Registry {
    /// A registry of these entries (their units run in this order).
    pub fn new(entries: Vec<Entry>) -> Self {
        Registry { entries }
    }

    /// The papers, in order.
    pub fn papers(&self) -> impl Iterator<Item = &dyn DynPaper> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Paper(p) => Some(p.as_ref()),
            Entry::Kernel(_) => None,
        })
    }

    /// The kernel suites, in order.
    pub fn kernels(&self) -> impl Iterator<Item = &dyn KernelSuite> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Kernel(k) => Some(k.as_ref()),
            Entry::Paper(_) => None,
        })
    }

    /// The paper `id`.
    pub fn paper(&self, id: &str) -> Option<&dyn DynPaper> {
        self.papers().find(|p| p.info().id == id)
    }

    /// Every paper's preset of `scale`, keyed by paper id.
    pub fn default_configs(&self, scale: Scale) -> Configs {
        self.papers()
            .map(|p| (p.info().id.to_string(), p.default_config(scale)))
            .collect()
    }

    /// Every unit at these seeds with these settings, in execution order.
    pub fn all_units(
        &self,
        scale: Scale,
        seeds: &[u64],
        configs: &Configs,
    ) -> Result<Vec<UnitSpec>> {
        let mut units = Vec::new();
        for e in &self.entries {
            match e {
                Entry::Kernel(k) => units.extend(k.units(scale, seeds)),
                Entry::Paper(p) => {
                    let cfg = settings_of(configs, p.info().id)?;
                    units.extend(
                        p.units(cfg, seeds)
                            .map_err(|e| input_error(e.to_string()))?,
                    );
                }
            }
        }
        Ok(units)
    }

    /// The fallbacks of the papers and kernel suites `units` belong to, in registry order.
    pub fn fallbacks(&self, units: &[UnitSpec]) -> Vec<Fallback> {
        let mut out = Vec::new();
        for e in &self.entries {
            let (selected, fallbacks) = match e {
                Entry::Kernel(k) => {
                    let prefix = format!("{}/", k.id());
                    (
                        units.iter().any(|u| u.id.starts_with(&prefix)),
                        k.fallbacks(),
                    )
                }
                Entry::Paper(p) => {
                    let id = p.info().id;
                    (units.iter().any(|u| u.paper == id), p.fallbacks())
                }
            };
            if selected {
                out.extend(fallbacks);
            }
        }
        out
    }

    /// The data cards of the papers `units` belong to (registry order), read from `data` with
    /// each paper's settings in `configs`, merged by [`merge_cards`] and checked
    /// ([`crate::store::check_data_cards`]). A paper that cannot load its text (a package not
    /// installed, a corpus root without a domain) is an input error with the paper's message.
    pub fn data_cards(
        &self,
        units: &[UnitSpec],
        configs: &Configs,
        data: &DataEnv,
    ) -> Result<Vec<DataCard>> {
        let mut cards = Vec::new();
        for p in self.papers() {
            let id = p.info().id;
            if !units.iter().any(|u| u.paper == id) {
                continue;
            }
            let cfg = settings_of(configs, id)?;
            cards.extend(
                p.data_cards(cfg, data)
                    .map_err(|e| input_error(e.to_string()))?,
            );
        }
        let cards = merge_cards(cards);
        crate::store::check_data_cards(&cards).map_err(|e| {
            input_error(format!("the data cards the selected papers returned: {e}"))
        })?;
        Ok(cards)
    }

    /// Every id `--only` accepts: paper ids, kernel ids and unit ids, sorted.
    pub fn known_ids(&self, units: &[UnitSpec]) -> Vec<String> {
        let mut ids: BTreeSet<String> = units.iter().map(|u| u.id.clone()).collect();
        ids.extend(self.papers().map(|p| p.info().id.to_string()));
        ids.extend(self.kernels().map(|k| k.id().to_string()));
        ids.into_iter().collect()
    }

    /// The units `--only` selects (by id prefix on path segments; a paper id selects its units
    /// and its kernels' units), with every unit a selected one depends on. An id that selects
    /// nothing is an error listing the known ids.
    pub fn select(&self, units: Vec<UnitSpec>, only: &[String]) -> Result<Vec<UnitSpec>> {
        if only.is_empty() {
            return Ok(units);
        }
        let under =
            |u: &UnitSpec, p: &str| u.id == p || u.id.starts_with(&format!("{p}/")) || u.paper == p;
        let mut prefixes = Vec::new();
        for o in only {
            let o = o.trim().trim_end_matches('/');
            let mut hit = false;
            if let Some(p) = self.paper(o) {
                prefixes.extend(p.info().kernels.iter().map(|k| k.to_string()));
                hit = !p.info().kernels.is_empty();
            }
            if units.iter().any(|u| under(u, o)) {
                prefixes.push(o.to_string());
                hit = true;
            }
            if !hit {
                return Err(input_error(format!(
                    "--only {o}: matches no registered unit; known ids: {}",
                    self.known_ids(&units).join(", ")
                )));
            }
        }
        let mut keep: BTreeSet<String> = units
            .iter()
            .filter(|u| prefixes.iter().any(|p| under(u, p)))
            .map(|u| u.id.clone())
            .collect();
        // Dependencies, transitively (they come earlier in the list).
        for u in units.iter().rev() {
            if keep.contains(&u.id) {
                keep.extend(u.depends_on.iter().cloned());
            }
        }
        Ok(units.into_iter().filter(|u| keep.contains(&u.id)).collect())
    }

    /// Runs `unit` on the backend its [`RunsOn`] gets under `plan`, with the passed records of
    /// its dependencies (`inputs`). Returns the backend and device it ran on.
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        &self,
        unit: &UnitSpec,
        plan: &Plan,
        scale: Scale,
        configs: &Configs,
        seeds: &[u64],
        inputs: &[UnitRecord],
        artifacts: &dyn ArtifactSource,
        data: &DataEnv,
        tick: &mut dyn FnMut(),
    ) -> (Exec, String, Outcome) {
        let (exec, device) = placement(unit, plan);
        let mut ctx = RunContext {
            exec,
            device: &device,
            scale,
            seeds,
            inputs,
            artifacts,
            data,
            tick,
        };
        let outcome = if unit.paper == "kernels" {
            match self
                .kernels()
                .find(|k| unit.id.starts_with(&format!("{}/", k.id())))
            {
                Some(k) => k.run_unit(unit, &mut ctx),
                None => Outcome::error(format!("unit {}: no kernel suite owns it", unit.id)),
            }
        } else {
            match (self.paper(&unit.paper), configs.get(&unit.paper)) {
                (Some(p), Some(cfg)) => p.run_unit(cfg, unit, &mut ctx),
                _ => Outcome::error(format!("unit {}: no paper {} here", unit.id, unit.paper)),
            }
        };
        (exec, device, outcome)
    }
}

/// The settings of paper `id` in `configs`, or an input error naming the paper.
fn settings_of<'a>(configs: &'a Configs, id: &str) -> Result<&'a serde_json::Value> {
    configs
        .get(id)
        .ok_or_else(|| input_error(format!("no settings for paper {id}")))
}

/// One card per (domain, text SHA-256, tokenizer SHA-256), in the order first seen: cards several
/// papers return for the same text and tokenizer become one whose `used_by` is the sorted union;
/// the same domain read differently (another tokenizer, another budget) keeps separate cards.
pub fn merge_cards(cards: Vec<DataCard>) -> Vec<DataCard> {
    let mut out: Vec<DataCard> = Vec::new();
    for card in cards {
        let same = |c: &&mut DataCard| {
            c.domain == card.domain
                && c.sha256 == card.sha256
                && c.tokenizer_sha256 == card.tokenizer_sha256
        };
        match out.iter_mut().find(same) {
            Some(c) => c.used_by.extend(card.used_by),
            None => out.push(card),
        }
    }
    for c in &mut out {
        c.used_by.sort();
        c.used_by.dedup();
    }
    out
}

/// The backend and device a unit runs on under `plan`.
pub fn placement(unit: &UnitSpec, plan: &Plan) -> (Exec, String) {
    match unit.runs_on {
        RunsOn::Train => (plan.train, plan.train_device.name.clone()),
        RunsOn::Flex => (Exec::Flex, crate::devices::flex_device().name),
        RunsOn::Kernel => (
            plan.kernels.unwrap_or(plan.train),
            plan.kernel_device
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default(),
        ),
    }
}
