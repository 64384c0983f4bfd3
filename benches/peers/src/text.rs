//! Compressible values for issue #17's space workload: JSON-like text of about 400 bytes,
//! built from a fixed vocabulary (field names, words, numbers), deterministic per key.

use crate::workload::{Rng, mix};

const WORDS: &[&str] = &[
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "order",
    "shipped",
    "pending",
    "cancelled",
    "customer",
    "warehouse",
    "express",
    "standard",
];

const CITIES: &[&str] = &[
    "Berlin", "Lisbon", "Oslo", "Madrid", "Vienna", "Prague", "Dublin", "Warsaw",
];

/// The value of row `i`: a JSON object of about 400 bytes (it varies by a few dozen).
pub fn value(i: u64) -> Vec<u8> {
    let mut rng = Rng::new(mix(i ^ 0x7E47));
    let mut pick = |list: &[&'static str]| list[rng.index(list.len())];
    let words: Vec<&str> = (0..12).map(|_| pick(WORDS)).collect();
    let city = pick(CITIES);
    let status = pick(&WORDS[27..30]);
    let shipping = pick(&WORDS[32..34]);
    let mut rng = Rng::new(mix(i ^ 0xA11CE));
    let qty = 1 + rng.index(20);
    let price = rng.index(100_000);
    let zip = 10_000 + rng.index(89_999);
    let ts = 1_700_000_000 + rng.index(50_000_000);
    format!(
        concat!(
            r#"{{"id":{},"user":"user-{:08}","status":"{}","created_at":{},"#,
            r#""shipping":{{"method":"{}","city":"{}","zip":"{}","country":"EU"}},"#,
            r#""items":[{{"sku":"SKU-{:06}","qty":{},"price_cents":{}}},"#,
            r#"{{"sku":"SKU-{:06}","qty":1,"price_cents":{}}}],"#,
            r#""tags":["{}","{}","{}"],"note":"{} {} {} {} {} {} {} {} {}"}}"#
        ),
        i,
        i % 100_000,
        status,
        ts,
        shipping,
        city,
        zip,
        price % 1000,
        qty,
        price,
        (price * 7) % 1000,
        price / 3,
        words[0],
        words[1],
        words[2],
        words[3],
        words[4],
        words[5],
        words[6],
        words[7],
        words[8],
        words[9],
        words[10],
        words[11],
    )
    .into_bytes()
}
