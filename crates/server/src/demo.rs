//! Demo accounts, one per role, with fresh random passwords and TOTP secrets (printed by `xinyong demo` and
//! `xinyong accounts demo`). The enterprise account belongs to a firm the latest run marks yellow (so a new
//! user can read why), and the bank account to a lender that does not lend to that firm (so its
//! authorisation is what opens the record).

use crate::auth::{self, Role, User};
use crate::Error;
use serde::Serialize;
use xinyong_store::rows::RowOp;
use xinyong_store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct DemoAccount {
    pub user: String,
    pub role: Role,
    pub org: String,
    pub password: String,
    pub totp_secret: Option<String>,
}

/// Creates (or replaces) the demo accounts.
pub fn create(store: &mut dyn Store, created_at: &str) -> Result<Vec<DemoAccount>, Error> {
    let firm = demo_firm(store)?;
    let borrowed_from: Vec<String> = store.facts_of(&firm, None)?.into_iter().map(|f| f.source).collect();
    let bank = crate::account::lenders()
        .into_iter()
        .map(|l| l.0)
        .find(|b| b.starts_with("bank") && !borrowed_from.contains(b))
        .unwrap_or_else(|| "bank01".into());
    let person = demo_person(store, &firm)?;
    let plan = [
        ("demo-enterprise", Role::Enterprise, firm.as_str(), "企业用户"),
        ("demo-person", Role::Person, person.as_str(), "法定代表人"),
        ("demo-bank", Role::Bank, bank.as_str(), "银行客户经理"),
        ("demo-department", Role::Department, "amr", "部门数据员"),
        ("demo-regulator", Role::Regulator, "jrb", "金融办分析员"),
        ("demo-admin", Role::Admin, "", "平台管理员"),
    ];
    let mut out = Vec::new();
    let mut ops = Vec::new();
    for (id, role, org, name) in plan {
        let password = format!("xy-{}", &auth::random_token()[..16]);
        let totp_secret = role.needs_totp().then(auth::new_totp_secret);
        let u = User {
            user_id: id.into(),
            role,
            org: org.into(),
            name: name.into(),
            password_hash: auth::hash_password(&password)?,
            totp_secret: totp_secret.clone(),
            disabled: false,
        };
        ops.push(RowOp::Put {
            table: "users",
            row: u.row(created_at),
        });
        out.push(DemoAccount {
            user: id.into(),
            role,
            org: org.into(),
            password,
            totp_secret,
        });
    }
    store.apply_rows(&ops)?;
    Ok(out)
}

/// The demo enterprise: the first yellow firm of the latest run (by USCC) with a market-regulation penalty it
/// may apply to repair today (so a new user can try every right, and the demo department reviews it), else
/// the first yellow firm, else the first firm with a score, else the first registered firm.
fn demo_firm(store: &dyn Store) -> Result<String, Error> {
    if let Some(run) = store.latest_run()? {
        let mut scores = store.run_scores(&run.run_id)?;
        scores.sort_by(|a, b| a.uscc.cmp(&b.uscc));
        let rights = crate::objections::Rights::builtin();
        let today = crate::objections::day(&crate::today())?;
        let repairable = |uscc: &str| -> Result<bool, Error> {
            Ok(store.facts_of(uscc, None)?.iter().any(|f| {
                f.dataset == "amr.penalties"
                    && f.known_to.is_none()
                    && crate::objections::repairable(&rights, f, today)
                        .ok()
                        .flatten()
                        .is_some_and(|from| from <= today)
            }))
        };
        let yellow: Vec<&xinyong_store::ScoreRow> = scores
            .iter()
            .filter(|s| s.colour.as_deref() == Some("yellow"))
            .collect();
        for s in &yellow {
            if repairable(&s.uscc)? {
                return Ok(s.uscc.clone());
            }
        }
        if let Some(s) = yellow.first().copied().or(scores.first()) {
            return Ok(s.uscc.clone());
        }
    }
    store
        .current_facts("amr", "amr.registration")?
        .into_iter()
        .map(|f| f.uscc)
        .min()
        .ok_or_else(|| Error::NotFound("no registered firm: ingest the register first".into()))
}

/// The demo person: the legal representative of the demo firm (its pseudonymous id).
fn demo_person(store: &dyn Store, firm: &str) -> Result<String, Error> {
    let reg = store
        .facts_of(firm, None)?
        .into_iter()
        .find(|f| f.dataset == "amr.registration")
        .ok_or_else(|| Error::NotFound(format!("no registration of {firm}")))?;
    let v: serde_json::Value = serde_json::from_str(&reg.fields).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    Ok(xinyong_credit::network::person_id(&s("legal_rep"), &s("legal_rep_id")))
}

/// The accounts as the demo prints them.
pub fn describe(accounts: &[DemoAccount]) -> String {
    let mut s = String::from("demo accounts (role, user, password, TOTP secret for an authenticator app):\n");
    for a in accounts {
        s += &format!(
            "  {:<11} {:<16} {:<22} {}\n",
            a.role.code(),
            a.user,
            a.password,
            a.totp_secret.as_deref().unwrap_or("(no second factor)")
        );
    }
    s
}
