//! SCRAM-SHA-256 (RFC 5802 / 7677) on the server side, without channel binding, as Postgres
//! does it: the salted password is derived once at start; each login exchanges
//! client-first, server-first, client-final, server-final.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// PBKDF2 iterations (Postgres' default).
const ITERATIONS: u32 = 4096;

/// `n` random bytes from the operating system (falls back to a hash of time and address
/// where /dev/urandom is unavailable).
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_ok() {
        return buf;
    }
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    buf
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// PBKDF2-HMAC-SHA-256 with one block ("Hi" in RFC 5802).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut input = salt.to_vec();
    input.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &input);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// What the server keeps of the password.
#[derive(Clone)]
pub(crate) struct Secret {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Derives the keys of `password` with a random salt.
    pub fn new(password: &str) -> Self {
        let salt = random_bytes(16);
        let salted = hi(password.as_bytes(), &salt, ITERATIONS);
        let client_key = hmac(&salted, b"Client Key");
        Secret {
            salt,
            iterations: ITERATIONS,
            stored_key: sha256(&client_key),
            server_key: hmac(&salted, b"Server Key"),
        }
    }
}

/// One login in progress.
#[derive(Debug)]
pub(crate) struct Exchange {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

/// Why a login failed (sent to the client as a FATAL error).
pub(crate) type Failure = String;

/// Reads client-first-message and answers server-first-message.
pub(crate) fn server_first(secret: &Secret, client_first: &[u8]) -> Result<(Exchange, String), Failure> {
    let msg = std::str::from_utf8(client_first).map_err(|_| "client-first-message is not UTF-8".to_string())?;
    // gs2-header: "n,," or "y,,"; "p=..." asks for channel binding, which is not offered.
    let mut parts = msg.splitn(3, ',');
    let cb = parts.next().unwrap_or_default();
    let authzid = parts.next().unwrap_or_default();
    let bare = parts.next().ok_or_else(|| "malformed client-first-message".to_string())?;
    if cb.starts_with('p') {
        return Err("channel binding is not supported".into());
    }
    if cb != "n" && cb != "y" {
        return Err("malformed gs2 header".into());
    }
    let client_nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "client-first-message has no nonce".to_string())?;
    let nonce = format!("{client_nonce}{}", B64.encode(random_bytes(18)));
    let server_first = format!("r={nonce},s={},i={}", B64.encode(&secret.salt), secret.iterations);
    let ex = Exchange {
        client_first_bare: bare.to_string(),
        server_first: server_first.clone(),
        nonce,
        gs2_header: format!("{cb},{authzid},"),
    };
    Ok((ex, server_first))
}

/// Checks client-final-message; answers server-final-message when the proof is right.
pub(crate) fn server_final(secret: &Secret, ex: &Exchange, client_final: &[u8]) -> Result<String, Failure> {
    let msg = std::str::from_utf8(client_final).map_err(|_| "client-final-message is not UTF-8".to_string())?;
    let (without_proof, proof) =
        msg.rsplit_once(",p=").ok_or_else(|| "client-final-message has no proof".to_string())?;
    let mut channel = None;
    let mut nonce = None;
    for a in without_proof.split(',') {
        if let Some(v) = a.strip_prefix("c=") {
            channel = Some(v);
        } else if let Some(v) = a.strip_prefix("r=") {
            nonce = Some(v);
        }
    }
    if channel != Some(B64.encode(ex.gs2_header.as_bytes()).as_str()) {
        return Err("channel binding data does not match".into());
    }
    if nonce != Some(ex.nonce.as_str()) {
        return Err("nonce does not match".into());
    }
    let proof = B64.decode(proof).map_err(|_| "malformed proof".to_string())?;
    if proof.len() != 32 {
        return Err("malformed proof".into());
    }
    let auth_message = format!("{},{},{}", ex.client_first_bare, ex.server_first, without_proof);
    let client_signature = hmac(&secret.stored_key, auth_message.as_bytes());
    let mut client_key = [0u8; 32];
    for i in 0..32 {
        client_key[i] = proof[i] ^ client_signature[i];
    }
    let check = sha256(&client_key);
    // Constant-time comparison.
    let diff = check.iter().zip(secret.stored_key.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err("password authentication failed".into());
    }
    let server_signature = hmac(&secret.server_key, auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client side, as RFC 7677 describes it.
    fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let nonce = attrs[0].strip_prefix("r=").unwrap();
        let salt = B64.decode(attrs[1].strip_prefix("s=").unwrap()).unwrap();
        let iters: u32 = attrs[2].strip_prefix("i=").unwrap().parse().unwrap();
        let salted = hi(password.as_bytes(), &salt, iters);
        let client_key = hmac(&salted, b"Client Key");
        let stored = sha256(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig.iter()).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    #[test]
    fn right_password_passes_wrong_one_fails() {
        let secret = Secret::new("pencil");
        let (ex, sf) = server_first(&secret, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let cf = client_final("pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO", &sf);
        assert!(server_final(&secret, &ex, cf.as_bytes()).unwrap().starts_with("v="));
        let (ex, sf) = server_first(&secret, b"n,,n=user,r=abc").unwrap();
        let cf = client_final("wrong", "n=user,r=abc", &sf);
        assert!(server_final(&secret, &ex, cf.as_bytes()).is_err());
    }

    #[test]
    fn hi_matches_rfc7677_vector() {
        // RFC 7677 example: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = hi(b"pencil", &salt, 4096);
        let client_key = hmac(&salted, b"Client Key");
        let stored = sha256(&client_key);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let sig = hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(B64.encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    }
}
