//! The statistics behind the apiserver bench's verdicts: quantiles by nearest
//! rank, and how sure a run is of what one condition adds to another's p99
//! ([`P99Interval`], a block bootstrap over spells of consecutive cycles).
//!
//! Pure and deterministic (a fixed seed), so that `tests/bench_statistics.rs`
//! checks the verdicts the README quotes; included with `#[path]` by
//! `benches/https_load.rs` and that test.

/// The index of the `q` quantile (nearest rank) among `len` sorted values;
/// `None` when there are none.
pub fn nearest_rank(len: usize, q: f64) -> Option<usize> {
    let rank = ((len as f64 * q).ceil() as usize).clamp(1, len.max(1));
    (len > 0).then_some(rank - 1)
}

/// The `q` quantile (nearest rank) of sorted values; NaN when there are none.
pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    nearest_rank(sorted.len(), q).map_or(f64::NAN, |i| sorted[i] as f64)
}

/// The `q` quantile of sorted nanoseconds, in milliseconds.
pub fn percentile_ms(sorted: &[u64], q: f64) -> f64 {
    percentile(sorted, q) / 1e6
}

/// xorshift64*: reproducible choices for the bench's schedule and for
/// [`P99Interval`] (not a source of secrets).
pub struct XorShift(pub u64);

impl XorShift {
    /// A number in `0..n` (`n` > 0; the modulo bias is negligible here).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// One cycle of a run: one creation of each condition, in the bench's
/// condition order, as nanoseconds (`None`: that creation failed, or the
/// cycle was left out).
pub type Cycle = Vec<Option<u64>>;

/// The creations of conditions `a` and `b` (indices into a [`Cycle`]) over
/// `spells`, each sorted.
fn creations<'a>(spells: impl Iterator<Item = &'a [Cycle]>, a: usize, b: usize) -> [Vec<u64>; 2] {
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    for cycle in spells.flatten() {
        xa.extend(cycle[a]);
        xb.extend(cycle[b]);
    }
    xa.sort_unstable();
    xb.sort_unstable();
    [xa, xb]
}

/// The p99 of condition `a` less that of `b` over the creations of
/// `spells` (ms).
fn p99_difference<'a>(spells: impl Iterator<Item = &'a [Cycle]>, a: usize, b: usize) -> f64 {
    let [xa, xb] = creations(spells, a, b);
    percentile_ms(&xa, 0.99) - percentile_ms(&xb, 0.99)
}

/// Cycles per spell in [`P99Interval`] when a cycle holds the bench's seven
/// conditions: 20 cycles of 7 creations, 7 s at 20 creations a second —
/// longer than the apiserver's slow spells seen in these runs (a few
/// seconds), short enough for 30 or more spells per run of 600. A run of
/// fewer conditions at the same rate has shorter cycles and takes more of
/// them per spell, so that a spell lasts as long (the bench's
/// `spell_cycles`).
pub const SPELL_CYCLES: usize = 20;

/// Resamples in [`P99Interval`].
pub const RESAMPLES: usize = 2000;

/// Fewer spells holding creations than this, and the bootstrap has too few
/// blocks to draw from for its interval to mean anything: with a single
/// spell every resample is the run itself and the interval collapses to the
/// estimate. A run of 200 cycles has 10.
pub const MIN_SPELLS: usize = 10;

/// Fewer creations of either condition than this, and its p99 is one of its
/// two largest creations (nearest rank): the verdict would rest on a couple
/// of creations.
pub const MIN_CREATIONS: usize = 200;

/// How sure a run is of what one condition adds to another's p99:
/// a 95% interval by a block bootstrap. The p99 of a few thousand
/// creations moves by several milliseconds from run to run (a slow
/// spell of the apiserver, a stalled vCPU), more than the 2 ms the
/// target allows, so a difference of p99s alone cannot say whether the
/// target is met. Each run's cycles are cut into spells of
/// `spell_cycles` consecutive cycles ([`SPELL_CYCLES`] for seven
/// conditions at 20 a second); a resample draws as many spells
/// as there are, with replacement, and takes the difference of the two
/// conditions' p99 over the creations of the spells drawn. Both
/// conditions of a cycle are drawn together, so a slow spell that fell
/// on both stays shared, as it was in the run (the interleaving's
/// point), while which spells were slow varies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct P99Interval {
    /// The difference, every run's creations together (ms).
    pub estimate: f64,
    /// The 2.5th percentile of the resampled differences (ms).
    pub low: f64,
    /// The 97.5th percentile of the resampled differences (ms).
    pub high: f64,
    /// Spells holding at least one creation of either condition.
    pub spells: usize,
    /// Creations of the condition with fewer of them (both have as many
    /// unless creations failed).
    pub creations: usize,
}

impl P99Interval {
    /// Of condition `a` over condition `b` (indices into a [`Cycle`]), over
    /// `runs`' cycles (each run's in the order they ran), in spells of
    /// `spell_cycles` cycles (at least 1). Spells do not cross runs.
    pub fn of(runs: &[Vec<Cycle>], a: usize, b: usize, spell_cycles: usize) -> P99Interval {
        let spells: Vec<&[Cycle]> = runs
            .iter()
            .flat_map(|cycles| cycles.chunks(spell_cycles.max(1)))
            .collect();
        // Empty spells (every cycle left out) stay in the draw, as they were
        // in the run; they do not count towards MIN_SPELLS.
        let holding = spells
            .iter()
            .filter(|spell| spell.iter().any(|c| c[a].is_some() || c[b].is_some()))
            .count();
        let [xa, xb] = creations(spells.iter().copied(), a, b);
        let estimate = percentile_ms(&xa, 0.99) - percentile_ms(&xb, 0.99);
        let mut random = XorShift(0x2545_F491_4F6C_DD1D);
        // Without spells nothing is drawn (`below` is never called) and
        // every resample is NaN.
        let mut resampled: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                let drawn = (0..spells.len()).map(|_| spells[random.below(spells.len())]);
                p99_difference(drawn, a, b)
            })
            .filter(|d| !d.is_nan())
            .collect();
        resampled.sort_by(f64::total_cmp);
        let at = |q: f64| nearest_rank(resampled.len(), q).map_or(f64::NAN, |i| resampled[i]);
        P99Interval {
            estimate,
            low: at(0.025),
            high: at(0.975),
            spells: holding,
            creations: xa.len().min(xb.len()),
        }
    }

    /// "+1.07 ms (95% interval −2.10 to +4.31)".
    pub fn describe(self) -> String {
        format!(
            "{:+.2} ms (95% interval {:+.2} to {:+.2})",
            self.estimate, self.low, self.high
        )
    }

    /// Against a bound: whether the estimate is within it, and whether
    /// the whole interval is on one side of it — or that there is too
    /// little to tell ([`MIN_SPELLS`], [`MIN_CREATIONS`]).
    pub fn verdict(self, bound: f64) -> String {
        if self.estimate.is_nan() || self.low.is_nan() || self.high.is_nan() {
            "no creations to compare".to_string()
        } else if self.spells < MIN_SPELLS || self.creations < MIN_CREATIONS {
            format!(
                "too few to tell ({} {} and {} creations; at least {MIN_SPELLS} spells and {MIN_CREATIONS} creations of each condition needed)",
                self.spells,
                if self.spells == 1 { "spell" } else { "spells" },
                self.creations
            )
        } else if self.high <= bound {
            "met, the whole interval within it".to_string()
        } else if self.low > bound {
            "NOT met, the whole interval above it".to_string()
        } else if self.estimate <= bound {
            "met at the estimate, but the interval reaches above it: this run cannot tell"
                .to_string()
        } else {
            "NOT met at the estimate, but the interval reaches below it: this run cannot tell"
                .to_string()
        }
    }
}
