//! The bytes of one remote cache entry, and where it lives in the store.
//!
//! ```text
//! bgtask-result-cache 1\n        magic and format version, one line
//! <32-byte MAC>                  blake3 keyed hash of (key, 0, zstd frame)
//! <zstd frame>                   the payload, compressed at level 3
//! ```
//!
//! The MAC key is derived from the team secret, so only holders of the
//! secret can write entries others will use. A reader checks the MAC
//! before decompressing anything and bounds what it inflates. Pure
//! functions, no I/O.

use std::io::Read;

/// The first line of every entry: magic and format version.
const MAGIC: &[u8] = b"bgtask-result-cache 1\n";
/// The magic without the version, to tell "another version" from "not ours".
const MAGIC_NAME: &[u8] = b"bgtask-result-cache ";
/// The context of `blake3::derive_key`: ties the MAC key to this use and format.
const KEY_CONTEXT: &str = "bgtask remote result cache v1";
const MAC_LEN: usize = 32;
/// zstd level 3: zstd's default, a good size/speed balance for JSON.
const LEVEL: i32 = 3;

/// The largest payload written or read (decompressed).
pub(super) const MAX_PAYLOAD: usize = 64 << 20;

/// How much the store is asked to hold per entry, at most: a payload that
/// does not compress at all, plus the header.
pub(super) fn max_stored(max_payload: usize) -> u64 {
    let bound = zstd::zstd_safe::compress_bound(max_payload);
    u64::try_from(bound + MAGIC.len() + MAC_LEN).unwrap_or(u64::MAX)
}

/// The MAC key derived from the team secret.
#[derive(Clone)]
pub(super) struct MacKey([u8; 32]);

impl MacKey {
    pub(super) fn new(secret: &[u8]) -> MacKey {
        MacKey(blake3::derive_key(KEY_CONTEXT, secret))
    }

    fn tag(&self, key: &str, compressed: &[u8]) -> blake3::Hash {
        blake3::Hasher::new_keyed(&self.0)
            .update(key.as_bytes())
            .update(&[0])
            .update(compressed)
            .finalize()
    }
}

/// Checks a cache key: exactly 64 lowercase hex digits. Nothing else ever
/// becomes part of an object path.
pub(super) fn check_key(key: &str) -> Result<(), String> {
    if key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        let shown: String = key.chars().take(80).collect();
        Err(format!(
            "invalid cache key {shown:?}: a key is 64 lowercase hex digits"
        ))
    }
}

/// The object's path under the store's prefix: `v1/<key[..2]>/<key>`
/// (`key` already checked).
pub(super) fn object_path(
    prefix: &object_store::path::Path,
    key: &str,
) -> object_store::path::Path {
    entries_dir(prefix).join(&key[..2]).join(key)
}

/// Where every entry of this format lives.
pub(super) fn entries_dir(prefix: &object_store::path::Path) -> object_store::path::Path {
    prefix.clone().join("v1")
}

/// The key an object's path names, when it is an entry's path.
pub(super) fn key_of(location: &object_store::path::Path) -> Option<String> {
    let mut parts: Vec<_> = location.parts().collect();
    let name = parts.pop()?;
    let fanout = parts.pop()?;
    let key = name.as_ref();
    (check_key(key).is_ok() && fanout.as_ref() == &key[..2]).then(|| key.to_owned())
}

/// The stored bytes for `payload` under `key` (`key` already checked).
pub(super) fn encode(
    mac: &MacKey,
    key: &str,
    payload: &[u8],
    max_payload: usize,
) -> Result<Vec<u8>, String> {
    if payload.len() > max_payload {
        return Err(format!(
            "the entry is {} bytes, over the limit of {max_payload}",
            payload.len()
        ));
    }
    let compressed = zstd::bulk::compress(payload, LEVEL).map_err(|e| format!("zstd: {e}"))?;
    let tag = mac.tag(key, &compressed);
    let mut out = Vec::with_capacity(MAGIC.len() + MAC_LEN + compressed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// The payload stored in `bytes` under `key`, verified; else why not.
pub(super) fn decode(
    mac: &MacKey,
    key: &str,
    bytes: &[u8],
    max_payload: usize,
) -> Result<Vec<u8>, String> {
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        return Err(not_this_format(bytes));
    };
    if rest.len() < MAC_LEN {
        return Err(format!("truncated entry ({} bytes)", bytes.len()));
    }
    let (tag, compressed) = rest.split_at(MAC_LEN);
    let mut stored = [0u8; MAC_LEN];
    stored.copy_from_slice(tag);
    // `blake3::Hash`'s equality is constant-time.
    if blake3::Hash::from_bytes(stored) != mac.tag(key, compressed) {
        return Err(
            "MAC mismatch: the entry was changed, truncated or written with another secret".into(),
        );
    }
    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
        .map_err(|e| format!("corrupt zstd data: {e}"))?;
    let mut out = Vec::new();
    let limit = u64::try_from(max_payload)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    (&mut decoder)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("corrupt zstd data: {e}"))?;
    if out.len() > max_payload {
        return Err(format!(
            "the entry inflates to more than {max_payload} bytes"
        ));
    }
    Ok(out)
}

/// Why `bytes` (which do not start with this format's magic) are rejected.
fn not_this_format(bytes: &[u8]) -> String {
    let Some(rest) = bytes.strip_prefix(MAGIC_NAME) else {
        return if MAGIC.starts_with(bytes) {
            format!("truncated entry ({} bytes)", bytes.len())
        } else {
            "not a bgtask result cache entry".into()
        };
    };
    let version: String = rest
        .iter()
        .take_while(|b| **b != b'\n')
        .take(16)
        .map(|b| char::from(*b))
        .filter(char::is_ascii_graphic)
        .collect();
    format!("entry format version {version:?}; this bgtask reads version 1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_every_rejection() {
        let mac = MacKey::new(b"team secret");
        let payload = br#"{"findings":[]}"#.repeat(100);
        let bytes = encode(&mac, KEY, &payload, MAX_PAYLOAD).unwrap();
        assert!(bytes.len() < payload.len());
        assert_eq!(decode(&mac, KEY, &bytes, MAX_PAYLOAD).unwrap(), payload);
        assert_eq!(
            decode(
                &mac,
                KEY,
                &encode(&mac, KEY, b"", MAX_PAYLOAD).unwrap(),
                MAX_PAYLOAD
            )
            .unwrap(),
            b""
        );

        let other = KEY.replace('0', "f");
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut v2 = bytes.clone();
        v2[MAGIC.len() - 2] = b'2';
        let cases: [(&str, Vec<u8>, &MacKey, &str, &str); 8] = [
            ("flipped byte", flipped, &mac, KEY, "MAC mismatch"),
            (
                "truncated",
                bytes[..bytes.len() - 3].to_vec(),
                &mac,
                KEY,
                "MAC mismatch",
            ),
            (
                "no MAC",
                bytes[..MAGIC.len() + 5].to_vec(),
                &mac,
                KEY,
                "truncated entry",
            ),
            (
                "half magic",
                bytes[..5].to_vec(),
                &mac,
                KEY,
                "truncated entry",
            ),
            (
                "wrong secret",
                bytes.clone(),
                &MacKey::new(b"other"),
                KEY,
                "MAC mismatch",
            ),
            (
                "moved to another key",
                bytes.clone(),
                &mac,
                &other,
                "MAC mismatch",
            ),
            ("another version", v2, &mac, KEY, "format version \"2\""),
            (
                "not ours",
                b"<html>hello</html>".to_vec(),
                &mac,
                KEY,
                "not a bgtask",
            ),
        ];
        for (name, input, mac, key, want) in cases {
            let why = decode(mac, key, &input, MAX_PAYLOAD).unwrap_err();
            assert!(why.contains(want), "{name}: {why}");
        }
    }

    #[test]
    fn bounds_what_it_writes_and_inflates() {
        let mac = MacKey::new(b"s");
        assert!(
            encode(&mac, KEY, &[0; 101], 100)
                .unwrap_err()
                .contains("over the limit")
        );
        let bytes = encode(&mac, KEY, &[0; 101], 200).unwrap();
        let why = decode(&mac, KEY, &bytes, 100).unwrap_err();
        assert!(why.contains("inflates to more than 100"), "{why}");
        // A correctly MAC'd entry that is not zstd.
        let mut junk = MAGIC.to_vec();
        junk.extend_from_slice(mac.tag(KEY, b"junk").as_bytes());
        junk.extend_from_slice(b"junk");
        assert!(
            decode(&mac, KEY, &junk, 100)
                .unwrap_err()
                .contains("corrupt zstd")
        );
        assert!(max_stored(MAX_PAYLOAD) > MAX_PAYLOAD as u64);
    }

    #[test]
    fn keys_and_paths() {
        for bad in [
            "",
            "abc",
            &KEY.to_uppercase(),
            &format!("{}/x", &KEY[..62]),
            "../../etc/passwd",
            &format!("{KEY}0"),
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        check_key(KEY).unwrap();
        let prefix = object_store::path::Path::from("team/cache");
        let path = object_path(&prefix, KEY);
        assert_eq!(path.as_ref(), format!("team/cache/v1/01/{KEY}"));
        assert_eq!(key_of(&path).as_deref(), Some(KEY));
        assert_eq!(
            key_of(&object_store::path::Path::from(format!("v1/02/{KEY}"))),
            None
        );
        assert_eq!(key_of(&object_store::path::Path::from("v1/01/x.tmp")), None);
    }
}
