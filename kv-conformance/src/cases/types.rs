//! Typed keys and values: round trips, typed errors, key types side by side, empty values.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use kv_api::{Engine, Transaction, WriteBatch};

use super::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    tags: Vec<String>,
    manager: Option<Box<User>>,
    score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Started,
    Moved(i32, i32),
    Renamed { from: String, to: String },
    Wrapped(Option<Vec<u8>>),
}

async fn check_value<E: Engine, V>(txn: &Transaction<E>, key: &str, want: &V)
where
    V: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let got: Option<V> = must!(txn.get(0, key).await);
    assert_eq!(got.as_ref(), Some(want), "value of {key:?}");
}

/// Integers, floats, strings (unicode, empty), structs, enums, `Vec`, `Option`, tuples.
pub async fn round_trips<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let user = User {
        id: 7,
        name: "Zoë 🚀 中文".into(),
        tags: vec!["a".into(), String::new()],
        manager: Some(Box::new(User {
            id: 1,
            name: "boss".into(),
            tags: vec![],
            manager: None,
            score: -0.5,
        })),
        score: 1e300,
    };
    let events = vec![
        Event::Started,
        Event::Moved(-1, i32::MAX),
        Event::Renamed {
            from: "ä".into(),
            to: "ß".into(),
        },
        Event::Wrapped(None),
        Event::Wrapped(Some(vec![0, 255])),
    ];
    let mut txn = store.current();
    must!(txn.insert(0, &"u8", &u8::MAX));
    must!(txn.insert(0, &"i64", &i64::MIN));
    must!(txn.insert(0, &"u128", &u128::MAX));
    must!(txn.insert(0, &"f64", &std::f64::consts::PI));
    must!(txn.insert(0, &"bool", &true));
    must!(txn.insert(0, &"char", &'é'));
    must!(txn.insert(0, &"unicode", &"héllo wörld ✓ 🚀 中文 \u{0}".to_string()));
    must!(txn.insert(0, &"empty string", &String::new()));
    must!(txn.insert(0, &"struct", &user));
    must!(txn.insert(0, &"enums", &events));
    must!(txn.insert(0, &"vec", &vec![1u64, 2, 3]));
    must!(txn.insert(0, &"empty vec", &Vec::<u64>::new()));
    must!(txn.insert(0, &"some", &Some("x".to_string())));
    must!(txn.insert(0, &"none", &Option::<String>::None));
    must!(txn.insert(0, &"tuple", &(1u8, "two".to_string(), -3i16)));
    must!(txn.insert(0, &"unicode key ✓ 中文", &1u8));
    must!(txn.commit().await);
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        check_value(&txn, "u8", &u8::MAX).await;
        check_value(&txn, "i64", &i64::MIN).await;
        check_value(&txn, "u128", &u128::MAX).await;
        check_value(&txn, "f64", &std::f64::consts::PI).await;
        check_value(&txn, "bool", &true).await;
        check_value(&txn, "char", &'é').await;
        check_value(&txn, "unicode", &"héllo wörld ✓ 🚀 中文 \u{0}".to_string()).await;
        check_value(&txn, "empty string", &String::new()).await;
        check_value(&txn, "struct", &user).await;
        check_value(&txn, "enums", &events).await;
        check_value(&txn, "vec", &vec![1u64, 2, 3]).await;
        check_value(&txn, "empty vec", &Vec::<u64>::new()).await;
        check_value(&txn, "some", &Some("x".to_string())).await;
        check_value(&txn, "none", &Option::<String>::None).await;
        check_value(&txn, "tuple", &(1u8, "two".to_string(), -3i16)).await;
        check_value(&txn, "unicode key ✓ 中文", &1u8).await;
    })
    .await;
}

/// A 1 MiB value round-trips, survives a reopen, an overwrite and a merge.
pub async fn large_value<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let big: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8).collect();
    let mut txn = store.current();
    must!(txn.insert(0, &"big", &big));
    must!(txn.insert(0, &"small", &1u8));
    must!(txn.commit().await);
    assert_eq!(
        must!(store.current().get::<_, Vec<u8>>(0, &"big").await).as_ref(),
        Some(&big)
    );
    let store = env.reopen(store).await;
    assert_eq!(
        must!(store.current().get::<_, Vec<u8>>(0, &"big").await).as_ref(),
        Some(&big)
    );
    let big2: Vec<u8> = big.iter().map(|b| b.wrapping_add(1)).collect();
    let mut txn = store.current();
    must!(txn.insert(0, &"big", &big2));
    must!(txn.commit().await);
    must!(store.merge().await);
    let store = env.reopen(store).await;
    let txn = store.current();
    assert_eq!(
        must!(txn.get::<_, Vec<u8>>(0, &"big").await).as_ref(),
        Some(&big2)
    );
    assert_eq!(must!(txn.get::<_, u8>(0, &"small").await), Some(1));
}

/// Reading a value as another type is `Error::Decode`, never a wrong value or a panic.
pub async fn wrong_type_is_decode_error<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"string", &"hello".to_string()));
    must!(txn.insert(0, &"number", &1_000_000u64));
    must!(txn.insert(0, &"bytes", &vec![3u8, 4, 5]));
    must!(txn.commit().await);
    let txn = store.current();
    assert_matches!(
        txn.get::<_, u64>(0, &"string").await,
        Err(Error::Decode { what: "value", .. })
    );
    assert_matches!(
        txn.get::<_, String>(0, &"number").await,
        Err(Error::Decode { what: "value", .. })
    );
    assert_matches!(
        txn.get::<_, bool>(0, &"bytes").await,
        Err(Error::Decode { what: "value", .. })
    );
    assert_matches!(
        txn.get::<_, User>(0, &"string").await,
        Err(Error::Decode { what: "value", .. })
    );
    let v = must!(txn.versions(0, &"number").await)[0];
    assert_matches!(
        txn.get_version::<_, String>(0, &"number", v).await,
        Err(Error::Decode { .. })
    );
    assert_matches!(
        txn.range::<String, bool>(0, ..).await,
        Err(Error::Decode { what: "value", .. })
    );
    // The right type still reads fine afterwards.
    assert_eq!(
        must!(txn.get::<_, u64>(0, &"number").await),
        Some(1_000_000)
    );
}

/// Keys and values above the configured maximum are `Error::TooLarge`, at insert and at the
/// engine's commit; the limits are inclusive; a refused insert leaves the transaction usable.
pub async fn too_large<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    // Limits no log record can hold are refused when the store opens, before any write could
    // be acknowledged with a length that does not fit its record.
    for options in [
        Options::default().max_value_size(usize::MAX),
        Options::default().max_value_size(u32::MAX as usize),
        Options::default().max_key_size(u32::MAX as usize),
        Options::default().segment_size(0),
    ] {
        assert_matches!(
            env.try_open_with(options.clone()).await.map(|_| ()),
            Err(Error::InvalidArgument(_))
        );
    }
    // Encoded sizes: a string key is its bytes + 3; a `Vec<u8>` value its bytes + 1.
    let store = env
        .open_with(Options::default().max_key_size(16).max_value_size(100))
        .await;
    let mut txn = store.current();
    must!(txn.insert(0, &"x".repeat(13), &1u8));
    assert_matches!(
        txn.insert(0, &"x".repeat(14), &1u8),
        Err(Error::TooLarge { what: "key", .. })
    );
    assert_matches!(
        txn.remove(0, &"x".repeat(14)),
        Err(Error::TooLarge { what: "key", .. })
    );
    must!(txn.insert(0, &"v", &vec![0u8; 99]));
    assert_matches!(
        txn.insert(0, &"w", &vec![0u8; 100]),
        Err(Error::TooLarge { what: "value", .. })
    );
    must!(txn.commit().await);
    let txn = store.current();
    assert_eq!(
        must!(txn.get::<_, Vec<u8>>(0, &"v").await).map(|v| v.len()),
        Some(99)
    );
    assert_eq!(must!(txn.get::<_, Vec<u8>>(0, &"w").await), None);
    drop(txn);

    // Below the typed layer, the engine enforces the same limits.
    let engine = store.engine();
    let big_key = WriteBatch::new(must!(engine.snapshot())).write(0, vec![0x29; 17], Some(vec![0]));
    assert_matches!(
        engine.commit(big_key).await,
        Err(Error::TooLarge { what: "key", .. })
    );
    let big_value =
        WriteBatch::new(must!(engine.snapshot())).write(0, vec![0x29], Some(vec![0; 101]));
    assert_matches!(
        engine.commit(big_value).await,
        Err(Error::TooLarge { what: "value", .. })
    );
    let store = env.reopen(store).await;
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"x".repeat(13)).await), Some(1));
}

/// Keys of different types in one slot never collide, and typed scans keep them apart.
pub async fn key_types_do_not_collide<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &3u8, &"u8"));
    must!(txn.insert(0, &3u16, &"u16"));
    must!(txn.insert(0, &3i64, &"i64"));
    must!(txn.insert(0, &"key foo", &"str"));
    must!(txn.insert(0, &"3", &"str 3"));
    must!(txn.insert(0, &vec![1u8, 2], &"vec"));
    must!(txn.insert(0, &(), &"unit"));
    must!(txn.insert(0, &Some(3u8), &"some"));
    must!(txn.commit().await);
    let mut txn = store.current();
    must!(txn.remove(0, &3u16));
    must!(txn.commit().await);
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        assert_eq!(
            must!(txn.get::<_, String>(0, &3u8).await).as_deref(),
            Some("u8")
        );
        assert_eq!(must!(txn.get::<_, String>(0, &3u16).await), None);
        assert_eq!(
            must!(txn.get::<_, String>(0, &3i64).await).as_deref(),
            Some("i64")
        );
        assert_eq!(
            must!(txn.get::<_, String>(0, &"key foo").await).as_deref(),
            Some("str")
        );
        assert_eq!(
            must!(txn.get::<_, String>(0, &"3").await).as_deref(),
            Some("str 3")
        );
        assert_eq!(
            must!(txn.get::<_, String>(0, &vec![1u8, 2]).await).as_deref(),
            Some("vec")
        );
        assert_eq!(
            must!(txn.get::<_, String>(0, &()).await).as_deref(),
            Some("unit")
        );
        assert_eq!(
            must!(txn.get::<_, String>(0, &Some(3u8)).await).as_deref(),
            Some("some")
        );
        assert_eq!(must!(txn.keys::<u8>(0).await), vec![3]);
        assert_eq!(
            must!(txn.keys::<String>(0).await),
            vec!["3".to_string(), "key foo".to_string()]
        );
        assert_eq!(must!(txn.keys::<Vec<u8>>(0).await), vec![vec![1, 2]]);
        assert!(must!(txn.keys::<u16>(0).await).is_empty());
    })
    .await;
}

/// A `&str` written reads back as `String` (and as key, `&str` and `String` are one key).
pub async fn str_reads_as_string<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &"hello"));
    must!(txn.insert(0, &"other".to_string(), "value"));
    must!(txn.commit().await);
    let txn = store.current();
    assert_eq!(
        must!(txn.get::<_, String>(0, &"k".to_string()).await).as_deref(),
        Some("hello")
    );
    assert_eq!(
        must!(txn.get::<_, String>(0, &"other").await).as_deref(),
        Some("value")
    );
    let rows = must!(txn.range::<String, String>(0, ..).await);
    assert_eq!(
        rows,
        vec![
            ("k".into(), "hello".into()),
            ("other".into(), "value".into())
        ]
    );
}

/// An empty value (`()`, zero bytes encoded; an empty string) is a value, not a removal.
pub async fn empty_value_is_not_removal<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"unit", &()));
    must!(txn.insert(0, &"empty", &""));
    must!(txn.commit().await);
    must!(store.merge().await);
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        assert_eq!(must!(txn.get::<_, ()>(0, &"unit").await), Some(()));
        assert_eq!(
            must!(txn.get::<_, String>(0, &"empty").await),
            Some(String::new())
        );
        let versions = must!(txn.versions(0, &"unit").await);
        assert_eq!(versions.len(), 1);
        assert!(
            !versions[0].is_removal(),
            "an empty value is listed as a removal"
        );
        assert_eq!(
            must!(txn.get_version::<_, ()>(0, &"unit", versions[0]).await),
            Some(())
        );
        assert_eq!(
            must!(txn.get_unremoved::<_, ()>(0, &"unit").await),
            Some(())
        );
        assert_eq!(
            must!(txn.keys::<String>(0).await),
            vec!["empty".to_string(), "unit".to_string()]
        );
        assert_eq!(must!(store.stats().await).live_keys, 2);
    })
    .await;
}
