//! Parsing as data: small exports, the records and quarantine rows they must give.

use xinyong_domain::legacy::Resolver;
use xinyong_ingest::parse;
use xinyong_registry::Registry;

/// Parses `text` as a delivery of `dataset` and returns (records as `row key fields`, quarantine as
/// `row reason raw`).
fn check(dataset: &str, text: &[u8], records: &[&str], quarantine: &[&str]) {
    let reg = Registry::builtin().unwrap();
    let ds = reg.dataset(dataset).unwrap();
    let p = parse(ds, text, &Resolver::new()).unwrap();
    let got: Vec<String> = p
        .records
        .iter()
        .map(|r| format!("{} {} {}", r.row, r.key, r.fields))
        .collect();
    assert_eq!(got, records, "records");
    let got: Vec<String> = p
        .quarantine
        .iter()
        .map(|q| format!("{} {} {}", q.row, q.reason, q.raw))
        .collect();
    assert_eq!(got, quarantine, "quarantine");
    assert_eq!(p.rows_read as usize, p.records.len() + p.quarantine.len());
}

#[test]
fn crlf_and_blank_lines_keep_row_numbers() {
    check(
        "tax.payments",
        "纳税人识别号,所属期,入库税额(元),增值税(元)\r\n91110000600037341L,2025-03,100.5,20\r\n\r\n91110000600037341L,2025-04,x,1\r\n9144030071526726XG,2025-04,7,\r\n合计,,107.5,21\r\n".as_bytes(),
        &[
            r#"2 91110000600037341L|2025-03 {"id":"91110000600037341L","period":"2025-03","metric:tax_paid":100.5,"metric:vat_paid":20}"#,
            r#"5 9144030071526726XG|2025-04 {"id":"9144030071526726XG","period":"2025-04","metric:tax_paid":7}"#,
        ],
        &["4 number 91110000600037341L,2025-04,x,1", "6 totals-row 合计,,107.5,21"],
    );
}

#[test]
fn out_of_range_and_percentages_are_rejected() {
    check(
        "tax.payments",
        "纳税人识别号,所属期,入库税额(元),增值税(元)\n91110000600037341L,2025-03,1e303,1\n91110000600037341L,2025-04,12%,1\n91110000600037341L,2025-05,\"1,234.5\",1\n".as_bytes(),
        &[r#"4 91110000600037341L|2025-05 {"id":"91110000600037341L","period":"2025-05","metric:tax_paid":1234.5,"metric:vat_paid":1}"#],
        &["2 number 91110000600037341L,2025-03,1e303,1", "3 number 91110000600037341L,2025-04,12%,1"],
    );
}

#[test]
fn shared_record_ids_are_kept_apart_per_firm() {
    // One court case, two district parties: two facts, not a conflict.
    let line = |id: &str, role: &str| {
        format!("{{\"dsrzjhm\":\"{id}\",\"ah\":\"(2025)浙0604民初1号\",\"larq\":\"2025-01-02\",\"ssdw\":\"{role}\"}}\n")
    };
    let text = format!(
        "\u{feff}{}{}",
        line("91110000600037341L", "原告"),
        line("9144030071526726XG", "被告")
    );
    let reg = Registry::builtin().unwrap();
    let p = parse(reg.dataset("court.cases").unwrap(), text.as_bytes(), &Resolver::new()).unwrap();
    assert!(p.quarantine.is_empty(), "{:?}", p.quarantine);
    let keys: Vec<&str> = p.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "(2025)浙0604民初1号|91110000600037341L",
            "(2025)浙0604民初1号|9144030071526726XG"
        ]
    );
}

#[test]
fn gb18030_file_and_rollup() {
    let reg = Registry::builtin().unwrap();
    // A GB18030 export with a full-width identifier and 年月日 periods.
    let text = "用户证件号码,抄表年月,用水量(吨),应收水费(元),欠费金额(元)\n９１１１００００６０００３７３４１Ｌ,2025年3月,12.5,51.25,0\n";
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    let p = parse(reg.dataset("water.usage").unwrap(), &bytes, &Resolver::new()).unwrap();
    assert_eq!(p.records.len(), 1, "{:?}", p.quarantine);
    assert_eq!(p.records[0].key, "91110000600037341L|2025-03");
    // Daily readings roll up into one fact per firm and month, pointing at the first row.
    let text = "户号证件,日期,日用电量(千瓦时)\n91110000600037341L,2025-03-01,10\n91110000600037341L,2025-03-02,5.5\n91110000600037341L,2025-03-02,5.5\n91110000600037341L,2025-04-01,1\n";
    let p = parse(reg.dataset("power.daily").unwrap(), text.as_bytes(), &Resolver::new()).unwrap();
    let got: Vec<String> = p
        .records
        .iter()
        .map(|r| format!("{} {} {}", r.row, r.n_rows, r.fields))
        .collect();
    assert_eq!(
        got,
        [
            r#"2 2 {"id":"91110000600037341L","period":"2025-03","metric:power_kwh":15.5,"rows":2}"#,
            r#"5 1 {"id":"91110000600037341L","period":"2025-04","metric:power_kwh":1,"rows":1}"#
        ]
    );
    assert_eq!(p.quarantine.len(), 1);
    assert_eq!(p.quarantine[0].reason, "duplicate");
}

#[test]
fn rows_in_the_other_encoding_are_quarantined_either_way() {
    let reg = Registry::builtin().unwrap();
    let ds = reg.dataset("water.usage").unwrap();
    let header = "用户证件号码,抄表年月,用水量(吨),应收水费(元),欠费金额(元)\n";
    let good = "91110000600037341L,2025年3月,12.5,51.25,0\n";
    let other = "9144030071526726XG,2025年3月,1,4.1,0\n";
    // A GB18030 file with one row written in UTF-8.
    let mut bytes = encoding_rs::GB18030.encode(&format!("{header}{good}")).0.into_owned();
    bytes.extend_from_slice(other.as_bytes());
    let p = parse(ds, &bytes, &Resolver::new()).unwrap();
    assert_eq!((p.records.len(), p.quarantine.len()), (1, 1));
    assert_eq!((p.quarantine[0].row, p.quarantine[0].reason.as_str()), (3, "encoding"));
    // The whole file in UTF-8 (declared GB18030) with one row in GB18030: read as UTF-8, that row out.
    let mut bytes = format!("{header}{good}").into_bytes();
    bytes.extend_from_slice(&encoding_rs::GB18030.encode(other).0);
    let p = parse(ds, &bytes, &Resolver::new()).unwrap();
    assert_eq!((p.records.len(), p.quarantine.len()), (1, 1));
    assert_eq!((p.quarantine[0].row, p.quarantine[0].reason.as_str()), (3, "encoding"));
    assert!(p
        .diagnostics
        .iter()
        .any(|d| d.starts_with("encoding: declared gb18030")));
}
