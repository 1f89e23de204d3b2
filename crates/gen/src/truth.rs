//! The hidden truth: generator parameters, each firm's latent default probability path and default
//! dates, in a folder of its own. The platform reads it only to validate models, never to train or score.

use crate::world::{month_end, World};
use crate::GenError;
use chrono::Duration;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TruthStats {
    pub borrower_years: usize,
    pub defaults: usize,
    pub annual_default_rate: f64,
    pub oracle_auc: f64,
}

/// Area under the ROC curve of `scores` against 0/1 `labels` (ties count one half).
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Firm-years of borrowers: at each January, the hidden 12-month PD and whether the firm stopped
/// paying within the next 12 months.
pub fn firm_years(w: &World) -> (Vec<f64>, Vec<bool>, Vec<(usize, usize)>) {
    let (mut s, mut l, mut k) = (Vec::new(), Vec::new(), Vec::new());
    for m in (0..w.months.len().saturating_sub(11)).step_by(12) {
        for i in 0..w.firms.len() {
            if !w.firms[i].borrower || !w.operating(i, m) || w.default_month(i).is_some_and(|d| d < m) {
                continue;
            }
            s.push(w.pd12(i, m));
            l.push(w.default_month(i).is_some_and(|d| d >= m && d < m + 12));
            k.push((i, m));
        }
    }
    (s, l, k)
}

pub fn stats(w: &World) -> TruthStats {
    let (s, l, _) = firm_years(w);
    let d = l.iter().filter(|&&x| x).count();
    TruthStats {
        borrower_years: s.len(),
        defaults: w.default_date.iter().filter(|d| d.is_some()).count(),
        annual_default_rate: d as f64 / s.len().max(1) as f64,
        oracle_auc: auc(&s, &l),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenError + '_ {
    move |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn write(w: &World, dir: &Path) -> Result<(TruthStats, ()), GenError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let st = stats(w);
    let p = dir.join("params.json");
    let params = serde_json::json!({
        "config": w.cfg,
        "model": {
            "baseline": format!("{} + sector risk + age effect + size effect + N(0, {}) firm effect (monthly log-odds)", crate::world::BASE_LOGODDS, crate::world::FIRM_SIGMA),
            "deviation": format!("x[m] = 0.9 x[m-1] + 0.32 e + {} sector_shock + contagion_push", crate::world::SHOCK_WEIGHT),
            "sector_shock": "s[m] = 0.85 s[m-1] + 0.25 e",
            "cycle": "0.35 sin(2 pi m / months) subtracted from the log-odds",
            "hazard": "sigmoid(baseline + x - cycle), borrowers only",
            "contagion": "a borrower's default pushes each guarantor's x by 0.9 + 1.2 min(2, guaranteed / guarantor annual revenue)",
            "default": "the firm stops paying on the default date; the lenders' feeds show 90+ days overdue from default + 90 days",
            "pd12": "1 - prod_k (1 - sigmoid(baseline + 0.9^k x - cycle)), k = 0..11",
        },
        "stats": st,
    });
    std::fs::write(&p, serde_json::to_vec_pretty(&params).unwrap_or_default()).map_err(io(&p))?;
    let p = dir.join("firms.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).map_err(io(&p))?);
    writeln!(
        f,
        "uscc,in_district,borrower,baseline_logodds,default_date,visible_default_date,dereg_month,dereg_status"
    )
    .map_err(io(&p))?;
    for (i, firm) in w.firms.iter().enumerate() {
        let dd = w.default_date[i];
        writeln!(
            f,
            "{},{},{},{:.4},{},{},{},{}",
            firm.uscc,
            firm.in_district,
            firm.borrower,
            firm.baseline,
            dd.map(|d| d.to_string()).unwrap_or_default(),
            dd.map(|d| (d + Duration::days(90)).to_string()).unwrap_or_default(),
            firm.dereg_month
                .map(|m| month_end(w.months[m]).to_string())
                .unwrap_or_default(),
            firm.dereg_status
        )
        .map_err(io(&p))?;
    }
    f.flush().map_err(io(&p))?;
    let p = dir.join("pd_monthly.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).map_err(io(&p))?);
    writeln!(f, "uscc,month,monthly_hazard,pd12").map_err(io(&p))?;
    for (i, firm) in w.firms.iter().enumerate() {
        if !firm.borrower {
            continue;
        }
        for m in 0..w.months.len() {
            if w.operating(i, m) {
                writeln!(
                    f,
                    "{},{},{:.6},{:.6}",
                    firm.uscc,
                    &w.months[m].to_string()[..7],
                    w.hazard[i][m],
                    w.pd12(i, m)
                )
                .map_err(io(&p))?;
            }
        }
    }
    f.flush().map_err(io(&p))?;
    Ok((st, ()))
}
