//! Chinese names for firms and persons.

use rand::Rng;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高", "金", "钱", "沈", "俞", "丁", "顾", "夏", "章", "范", "叶", "倪", "谢", "陶", "宋", "韩", "冯", "蒋", "魏",
    "潘", "杜",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "军", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超", "秀", "霞", "平",
    "刚", "建", "国", "华", "峰", "红", "文", "斌", "林", "海", "云", "飞", "鹏", "晓", "东", "春", "雪", "宁", "浩",
    "志", "燕",
];
const TRADE_NAMES: &[&str] = &[
    "鸿", "盛", "达", "兴", "泰", "恒", "隆", "昌", "华", "丰", "瑞", "祥", "宏", "信", "远", "东", "升", "金", "永",
    "顺", "创", "新", "润", "博", "嘉", "凯", "富", "利", "诚", "德", "伟", "明", "天", "海", "龙", "凤", "舜", "虞",
    "曹", "娥",
];

/// A person's name: surname and one or two given characters.
pub fn person(rng: &mut impl Rng) -> String {
    let mut s = SURNAMES[rng.gen_range(0..SURNAMES.len())].to_string();
    s.push_str(GIVEN[rng.gen_range(0..GIVEN.len())]);
    if rng.gen_bool(0.7) {
        s.push_str(GIVEN[rng.gen_range(0..GIVEN.len())]);
    }
    s
}

/// A firm name: place, trade name (字号), industry word and legal form.
pub fn firm(rng: &mut impl Rng, place: &str, industry_word: &str, branch: bool) -> String {
    let a = TRADE_NAMES[rng.gen_range(0..TRADE_NAMES.len())];
    let b = TRADE_NAMES[rng.gen_range(0..TRADE_NAMES.len())];
    let form = if branch {
        "有限公司上虞分公司"
    } else if rng.gen_bool(0.08) {
        "股份有限公司"
    } else {
        "有限公司"
    };
    format!("{place}{a}{b}{industry_word}{form}")
}

/// A resident ID number masked as exports show it: region, then stars, then the last four.
pub fn masked_id(rng: &mut impl Rng) -> String {
    let region = ["330682", "330604", "330621", "330602", "330681", "330683"][rng.gen_range(0..6)];
    let last: u32 = rng.gen_range(0..1000);
    let check = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "X"][rng.gen_range(0..11)];
    format!("{region}********{last:03}{check}")
}
