//! Page text in Chinese (the default) and English, as data (`i18n.toml`: one table per key with `zh` and `en`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "zh-cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

#[derive(Deserialize)]
struct Text {
    zh: String,
    en: String,
}

fn dict() -> &'static BTreeMap<String, Text> {
    static D: OnceLock<BTreeMap<String, Text>> = OnceLock::new();
    D.get_or_init(|| toml::from_str(include_str!("../i18n.toml")).expect("i18n.toml is valid (tested)"))
}

/// The text of `key` in `lang`; the key itself when the dictionary lacks it (a test keeps that from shipping).
pub fn t(lang: Lang, key: &str) -> String {
    match dict().get(key) {
        Some(x) => match lang {
            Lang::Zh => x.zh.clone(),
            Lang::En => x.en.clone(),
        },
        None => key.to_string(),
    }
}

/// Every key of the dictionary.
pub fn keys() -> Vec<&'static str> {
    dict().keys().map(String::as_str).collect()
}
