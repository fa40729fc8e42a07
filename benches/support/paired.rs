//! Ratios of our server's figure over the floor server's, each taken within
//! one run (the two servers measured one right after the other) and only then
//! summarised over the runs.
//!
//! The HTTPS table gives medians over runs, and the ratio of two medians mixes
//! runs: ours from one run over the floor's from another, a ratio no run
//! measured. On this VM the hour moves both servers by a fifth from one run to
//! the next, so that ratio can read "met" when no run's own ratio did. The
//! target line and the "vs floor" column use the median of the per-run ratios.

/// The median of the values that are not NaN (NaN if there are none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Each run's ratio `ours / floor`, in run order, and their median.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// One ratio per run in which both figures were measured and the floor's
    /// is a positive number.
    pub per_run: Vec<f64>,
    /// The median of `per_run` (NaN if it is empty).
    pub median: f64,
}

impl Paired {
    /// The ratios of `(ours, floor)` pairs, one pair per run; a run without
    /// one of the two figures (`None`), or with a floor figure that is not a
    /// positive number, gives no ratio.
    pub fn of(pairs: impl IntoIterator<Item = Option<(f64, f64)>>) -> Paired {
        let per_run: Vec<f64> = pairs
            .into_iter()
            .flatten()
            .filter(|(ours, floor)| ours.is_finite() && floor.is_finite() && *floor > 0.0)
            .map(|(ours, floor)| ours / floor)
            .collect();
        let median = median(per_run.clone());
        Paired { per_run, median }
    }

    /// The median, if any run gave a ratio.
    pub fn known(&self) -> Option<f64> {
        (!self.median.is_nan()).then_some(self.median)
    }

    /// The per-run ratios as percentages, `75%, 65%, 63%`.
    pub fn percents(&self) -> String {
        self.per_run
            .iter()
            .map(|r| format!("{:.0}%", 100.0 * r))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
