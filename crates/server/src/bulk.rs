//! Bulk screening: a bank officer uploads a customer list (Excel .xlsx, or CSV in UTF-8 or GB18030) and downloads
//! it back as Excel with each customer's register status and — for firms the bank may read (authorised or
//! borrowing) — grade, PD, colour and warnings; the others are marked as not authorised. Customers are found by
//! a column of USCCs (a header naming it, else the first column whose cells are valid codes), else by exact
//! firm name. Every cell taken from the upload or the store is escaped against formula injection (a cell
//! starting with = + - @, a tab or a carriage return gets a leading apostrophe), and every non-public read is in
//! the audit log before the file is sent.

use crate::access;
use crate::account::Ctx;
use crate::auth::{Principal, Role};
use crate::pages::{lang_of, page, LangQuery};
use crate::{AppState, Error};
use axum::extract::{Multipart, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;
use xinyong_store::Store;

/// Customers one upload may list at most.
pub const MAX_ROWS: usize = 5_000;

/// Columns a customer list may have at most.
pub const MAX_COLUMNS: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new().route("/screening", get(form).post(upload))
}

/// A cell safe to open in a spreadsheet: text that a spreadsheet would read as a formula gets a leading
/// apostrophe (OWASP's CSV-injection advice), everything else is kept.
pub fn escape_cell(s: &str) -> String {
    // An Excel cell holds at most 32,767 characters.
    let s: String = s.chars().take(32_000).collect();
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s,
    }
}

/// The upload as rows of text cells (the first row is the header).
pub fn read_table(file_name: &str, bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    let lower = file_name.to_lowercase();
    let rows: Vec<Vec<String>> = if lower.ends_with(".xlsx") {
        // Streamed cell by cell with bounds: a sparse sheet (a cell at A1 and one at XFD1048576) would
        // otherwise be materialised as a whole grid.
        use calamine::{DataRef, Reader};
        let mut wb =
            calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a readable .xlsx file: {e}"))?;
        let name = wb.sheet_names().first().cloned().ok_or("the workbook has no sheet")?;
        let mut cells = wb
            .worksheet_cells_reader(&name)
            .map_err(|e| format!("sheet {name}: {e}"))?;
        let mut rows: Vec<Vec<String>> = Vec::new();
        while let Some(c) = cells.next_cell().map_err(|e| format!("sheet {name}: {e}"))? {
            let (r, col) = c.get_position();
            let (r, col) = (r as usize, col as usize);
            if r > MAX_ROWS + 1 {
                return Err(format!("at most {MAX_ROWS} customers per file"));
            }
            if col >= MAX_COLUMNS {
                return Err(format!("at most {MAX_COLUMNS} columns"));
            }
            let text = match c.get_value() {
                DataRef::Empty => continue,
                DataRef::String(s) => s.clone(),
                DataRef::SharedString(s) => s.to_string(),
                DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
                DataRef::Float(f) => f.to_string(),
                DataRef::Int(i) => i.to_string(),
                DataRef::Bool(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            if rows.len() <= r {
                rows.resize(r + 1, Vec::new());
            }
            let row = &mut rows[r];
            if row.len() <= col {
                row.resize(col + 1, String::new());
            }
            row[col] = text;
        }
        rows
    } else if lower.ends_with(".csv") || lower.ends_with(".txt") {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim_start_matches('\u{feff}').to_string(),
            Err(_) => {
                let (t, _, bad) = encoding_rs::GB18030.decode(bytes);
                if bad {
                    return Err("the CSV file is neither UTF-8 nor GB18030".into());
                }
                t.into_owned()
            }
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut out = Vec::new();
        for (i, r) in rdr.records().enumerate() {
            let r = r.map_err(|e| format!("CSV line {}: {e}", i + 1))?;
            out.push(r.iter().map(str::to_string).collect());
        }
        out
    } else {
        return Err("upload a .xlsx or .csv file".into());
    };
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| r.iter().any(|c| !c.trim().is_empty()))
        .collect();
    if rows.len() < 2 {
        return Err("the file has no customer rows under its header".into());
    }
    if rows.len() - 1 > MAX_ROWS {
        return Err(format!(
            "at most {MAX_ROWS} customers per file ({} given)",
            rows.len() - 1
        ));
    }
    Ok(rows)
}

/// Which column holds the codes, and which the names.
fn columns(rows: &[Vec<String>]) -> (Option<usize>, Option<usize>) {
    let header = &rows[0];
    let named = |keys: &[&str]| {
        header.iter().position(|h| {
            let h = h.trim().to_lowercase();
            keys.iter().any(|k| h.contains(k))
        })
    };
    let code = named(&["统一社会信用代码", "信用代码", "uscc", "credit code"]).or_else(|| {
        (0..header.len()).find(|&c| {
            rows[1..]
                .iter()
                .filter(|r| r.get(c).is_some_and(|x| xinyong_domain::uscc::Uscc::parse(x).is_ok()))
                .count()
                * 2
                > rows.len() - 1
        })
    });
    let name = named(&["企业名称", "名称", "客户名称", "name", "firm"]);
    (code, name)
}

/// One customer's line in the result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Screened {
    pub row: usize,
    pub given: String,
    pub uscc: String,
    pub name: String,
    /// found, not_found, invalid_code.
    pub status: String,
    pub register_status: String,
    pub authorised: bool,
    pub grade: String,
    pub pd: Option<f64>,
    pub colour: String,
    pub warnings: String,
    pub basis: Option<String>,
}

/// Screens the rows for `who`.
pub fn screen(
    st: &AppState,
    store: &dyn Store,
    rows: &[Vec<String>],
    who: &Principal,
    today: &str,
    month: &str,
) -> Result<Vec<Screened>, Error> {
    let (code_col, name_col) = columns(rows);
    if code_col.is_none() && name_col.is_none() {
        return Err(Error::BadRequest(
            "no column of USCCs or firm names (name a header 统一社会信用代码 or 企业名称)".into(),
        ));
    }
    let rules = xinyong_credit::warnings::builtin_rules();
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate().skip(1) {
        let code = code_col
            .and_then(|c| r.get(c))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let name = name_col
            .and_then(|c| r.get(c))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mut line = Screened {
            row: i + 1,
            given: if code.is_empty() { name.clone() } else { code.clone() },
            uscc: String::new(),
            name: name.clone(),
            status: "not_found".into(),
            register_status: String::new(),
            authorised: false,
            grade: String::new(),
            pd: None,
            colour: String::new(),
            warnings: String::new(),
            basis: None,
        };
        let firm = {
            let ix = st.index.read().unwrap_or_else(|e| e.into_inner());
            if !code.is_empty() {
                match xinyong_domain::uscc::Uscc::parse(&code) {
                    Ok(u) => ix.get(u.as_str()).cloned(),
                    Err(_) => {
                        line.status = "invalid_code".into();
                        None
                    }
                }
            } else {
                ix.firms().iter().find(|f| f.name == name).cloned()
            }
        };
        if let Some(f) = firm {
            line.status = "found".into();
            line.uscc = f.uscc.clone();
            line.name = f.name.clone();
            line.register_status = f.status.clone();
            if let Some(b) = access::firm_access(store, &st.caches, Some(who), &f.uscc, today, month)? {
                line.authorised = true;
                line.basis = Some(b.code());
                if let Some(run) = &st.summary().run_id.clone() {
                    if let Some(json) = store.run_score(run, &f.uscc)? {
                        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                        line.grade = v.get("grade").and_then(|g| g.as_str()).unwrap_or_default().into();
                        line.pd = v.get("pd").and_then(|p| p.as_f64());
                        line.colour = v.get("colour").and_then(|c| c.as_str()).unwrap_or_default().into();
                        line.warnings = v
                            .get("warnings")
                            .and_then(|w| w.as_array())
                            .map(|ws| {
                                ws.iter()
                                    .filter_map(|w| w.get("rule").and_then(|r| r.as_u64()))
                                    .map(|id| {
                                        let n = rules.iter().find(|r| u64::from(r.id) == id);
                                        format!("#{id} {}", n.map_or("", |r| r.name_zh.as_str()))
                                    })
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            })
                            .unwrap_or_default();
                    }
                }
            }
        }
        out.push(line);
    }
    Ok(out)
}

/// The result as an .xlsx workbook, every text cell escaped.
pub fn workbook(lines: &[Screened]) -> Result<Vec<u8>, String> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    let xe = |e: rust_xlsxwriter::XlsxError| e.to_string();
    sheet.set_name("筛查结果").map_err(xe)?;
    let header = [
        "行号 row",
        "所填 given",
        "统一社会信用代码 USCC",
        "企业名称 name",
        "查找结果 status",
        "登记状态 register status",
        "已授权 authorised",
        "信用等级 grade",
        "违约概率 PD",
        "预警颜色 colour",
        "预警 warnings",
        "查看依据 basis",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).map_err(xe)?;
    }
    for (i, l) in lines.iter().enumerate() {
        let r = (i + 1) as u32;
        sheet.write_number(r, 0, l.row as f64).map_err(xe)?;
        let texts = [
            &l.given,
            &l.uscc,
            &l.name,
            &l.status,
            &l.register_status,
            &(if l.authorised { "yes" } else { "no" }).to_string(),
            &l.grade,
        ];
        for (c, t) in texts.iter().enumerate() {
            sheet.write_string(r, (c + 1) as u16, escape_cell(t)).map_err(xe)?;
        }
        if let Some(pd) = l.pd {
            sheet.write_number(r, 8, pd).map_err(xe)?;
        }
        sheet.write_string(r, 9, escape_cell(&l.colour)).map_err(xe)?;
        sheet.write_string(r, 10, escape_cell(&l.warnings)).map_err(xe)?;
        sheet
            .write_string(r, 11, escape_cell(l.basis.as_deref().unwrap_or("")))
            .map_err(xe)?;
    }
    wb.save_to_buffer().map_err(xe)
}

fn bank_or_regulator(ctx: &Ctx) -> Result<&Principal, Box<Response>> {
    ctx.require(
        &[Role::Bank, Role::Regulator],
        "bulk screening is for bank officers and analysts",
    )
}

async fn form(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    if let Err(r) = bank_or_regulator(&ctx) {
        return *r;
    }
    page(
        &st,
        &ctx,
        "bulk.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/screening", "max_rows": MAX_ROWS }),
    )
}

async fn upload(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, mut mp: Multipart) -> Response {
    let who = match bank_or_regulator(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        match mp.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => {
                let name = f.file_name().unwrap_or("upload").to_string();
                match f.bytes().await {
                    Ok(b) => file = Some((name, b.to_vec())),
                    Err(e) => return Error::BadRequest(format!("the upload broke off: {e}")).into_response(),
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return Error::BadRequest(format!("not a file upload: {e}")).into_response(),
        }
    }
    let Some((name, bytes)) = file else {
        return Error::BadRequest("choose a file to upload".into()).into_response();
    };
    let parsed = tokio::task::spawn_blocking(move || read_table(&name, &bytes)).await;
    let rows = match parsed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Error::BadRequest(e).into_response(),
        Err(e) => return Error::Internal(format!("reading the upload: {e}")).into_response(),
    };
    let (st2, today, month, who2) = (st.clone(), st.today(), st.data_month(), who.clone());
    let lines = match st
        .with_store(move |s| screen(&st2, s, &rows, &who2, &today, &month))
        .await
    {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    // Each non-public read on record before the file leaves.
    let reads = lines
        .iter()
        .filter(|l| l.authorised)
        .map(|l| ctx.entry("read", Some(&l.uscc), "/screening", l.basis.clone()))
        .collect();
    if let Err(e) = st.audit.record_many(reads).await {
        return e.into_response();
    }
    match workbook(&lines) {
        Ok(x) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"screening.xlsx\"".to_string(),
                ),
            ],
            x,
        )
            .into_response(),
        Err(e) => Error::Internal(format!("writing the workbook: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_escaped() {
        for bad in [
            "=1+1",
            "+SUM(A1)",
            "-2+3",
            "@cmd",
            "\tx",
            "\rx",
            "=HYPERLINK(\"http://x\")",
        ] {
            assert_eq!(escape_cell(bad), format!("'{bad}"));
        }
        for ok in ["上虞", "91330604MA2C00002Y", "", "a=b"] {
            assert_eq!(escape_cell(ok), ok);
        }
    }

    #[test]
    fn a_sparse_workbook_is_refused_without_building_its_grid() {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let sheet = wb.add_worksheet();
        sheet.write_string(0, 0, "统一社会信用代码").unwrap();
        sheet.write_string(1_048_575, 16_383, "x").unwrap();
        let bytes = wb.save_to_buffer().unwrap();
        let e = read_table("list.xlsx", &bytes).unwrap_err();
        assert!(e.contains("at most"), "{e}");
        // A normal one reads.
        let mut wb = rust_xlsxwriter::Workbook::new();
        let sheet = wb.add_worksheet();
        sheet.write_string(0, 0, "统一社会信用代码").unwrap();
        sheet.write_string(1, 0, "91330604MA2C00002Y").unwrap();
        sheet.write_number(2, 0, 12345.0).unwrap();
        let rows = read_table("list.xlsx", &wb.save_to_buffer().unwrap()).unwrap();
        assert_eq!(
            rows,
            [vec!["统一社会信用代码"], vec!["91330604MA2C00002Y"], vec!["12345"]]
        );
    }

    #[test]
    fn csv_in_gb18030_and_utf8_and_bad_files() {
        let text = "企业名称,统一社会信用代码\n甲公司,91330604MA2C00002Y\n";
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        for bytes in [text.as_bytes().to_vec(), gb.into_owned()] {
            let rows = read_table("list.csv", &bytes).unwrap();
            assert_eq!(rows[1], ["甲公司", "91330604MA2C00002Y"]);
            assert_eq!(columns(&rows), (Some(1), Some(0)));
        }
        assert!(read_table("list.pdf", b"x").unwrap_err().contains(".xlsx or .csv"));
        assert!(read_table("list.csv", "名称\n".as_bytes())
            .unwrap_err()
            .contains("no customer rows"));
        assert!(read_table("list.xlsx", b"not a zip").unwrap_err().contains(".xlsx"));
    }
}
