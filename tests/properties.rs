//! Properties over random sequences of requests, clock steps and session operations.

mod common;

use std::collections::HashMap;

use astack::limits::{peek_all, take_all, KeyLimits, Window};
use astack::session::{Outcome, Session, Status};
use common::*;
use proptest::prelude::*;

/// A burst of `requests` after moving the clock by `step_ms`.
fn steps() -> impl Strategy<Value = Vec<(u64, u8)>> {
    prop::collection::vec((0u64..3_000, 0u8..6), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// In any interval [t0, t1], the allowed requests never exceed each window's capacity
    /// plus what refilled: limit + floor((t1 − t0) · limit / period).
    #[test]
    fn no_window_allows_more_than_capacity_plus_refill(
        limits in (1u32..12, 1u64..10_000, 1u32..30, 1u64..60_000),
        steps in steps(),
    ) {
        let (l1, p1, l2, p2) = limits;
        let windows = [Window::new("a", l1, p1).unwrap(), Window::new("b", l2, p2).unwrap()];
        let mut tats = [0u64; 2];
        let mut now = 5_000u64;
        let mut allowed = Vec::new();
        for (step, requests) in steps {
            now += step;
            for _ in 0..requests {
                if take_all(&windows, &mut tats, now).allowed {
                    allowed.push(now);
                }
            }
        }
        for window in &windows {
            let (limit, period) = (u64::from(window.limit()), window.period_ms());
            for i in 0..allowed.len() {
                for j in i..allowed.len() {
                    let count = (j - i + 1) as u64;
                    let bound = limit + (allowed[j] - allowed[i]) * limit / period;
                    prop_assert!(
                        count <= bound,
                        "{} allowed in [{}, {}] > {} for {}/{} ms",
                        count, allowed[i], allowed[j], bound, limit, period
                    );
                }
            }
        }
    }

    /// A denied request changes no bucket; an allowed one takes from every bucket; peek
    /// reports exactly what take does.
    #[test]
    fn all_or_nothing(
        limits in (1u32..8, 1u64..5_000, 1u32..8, 1u64..50_000),
        steps in steps(),
    ) {
        let (l1, p1, l2, p2) = limits;
        let windows = [Window::new("a", l1, p1).unwrap(), Window::new("b", l2, p2).unwrap()];
        let mut tats = [0u64; 2];
        let mut now = 0u64;
        for (step, requests) in steps {
            now += step;
            for _ in 0..requests {
                let before = tats;
                let peeked = peek_all(&windows, &tats, now);
                prop_assert_eq!(tats, before, "peek takes nothing");
                let decision = take_all(&windows, &mut tats, now);
                prop_assert_eq!(peeked.allowed, decision.allowed);
                if !decision.allowed {
                    prop_assert_eq!(peeked, decision);
                }
                if decision.allowed {
                    prop_assert!(tats[0] > before[0] && tats[1] > before[1]);
                } else {
                    prop_assert_eq!(tats, before);
                    prop_assert!(decision.retry_after >= 1);
                }
            }
        }
    }
}

/// The engine-level all-or-nothing: minute-window denials leave the hour window's tokens.
#[test]
fn engine_minute_denials_keep_the_hour_tokens() {
    proptest!(ProptestConfig::with_cases(40), |(denials in 1usize..40, rpm in 1u32..10)| {
        let f = Fixture::new();
        let rph = rpm + 3;
        let k = f.key_with_limits(None, &["sessions:read"], KeyLimits {
            requests_per_minute: Some(rpm),
            requests_per_hour: Some(rph),
            concurrent_sessions: None,
        });
        for _ in 0..rpm {
            f.auth(&k.key, astack::Operation::SessionRead);
        }
        for _ in 0..denials {
            prop_assert_eq!(f.denied(&k.key, astack::Operation::SessionRead).code(), "rate_limited");
        }
        // A minute later the hour window still holds its 3 tokens (plus at most one refilled).
        f.advance(60_000);
        let mut allowed = 0;
        while f.engine.authorize(&k.key, astack::Operation::SessionRead).is_ok() {
            allowed += 1;
        }
        let refilled = 60_000 * u64::from(rph) / 3_600_000;
        prop_assert_eq!(allowed, (3 + refilled).min(u64::from(rpm)) as u32);
    });
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Connect(usize),
    End(usize, bool),
    Terminate(usize),
    Advance(u64),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..2).prop_map(Op::Create),
        3 => (0usize..16).prop_map(Op::Connect),
        2 => (0usize..16, any::<bool>()).prop_map(|(i, ok)| Op::End(i, ok)),
        2 => (0usize..16).prop_map(Op::Terminate),
        3 => prop_oneof![0u64..1_000, 100_000u64..400_000, 3_000_000u64..4_000_000].prop_map(Op::Advance),
        1 => Just(Op::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Final states never change, and each key's slots in use always equal its PENDING and
    /// ACTIVE sessions.
    #[test]
    fn final_states_are_final_and_slots_match_live_sessions(ops in prop::collection::vec(op(), 1..60)) {
        let mut config = config();
        config.sessions.max_duration_seconds = 600;
        let f = Fixture::with_config(config);
        let limits = KeyLimits { concurrent_sessions: Some(3), ..Default::default() };
        let keys = [
            f.key_with_limits(Some("acme"), &["sessions:read", "sessions:write"], limits),
            f.key_with_limits(Some("acme"), &["sessions:read", "sessions:write"], limits),
        ];
        let clients: Vec<_> = keys.iter().map(|k| f.principal(k)).collect();
        let worker = f.operator_worker();
        let mut sessions: Vec<astack::session::CreatedSession> = Vec::new();
        let mut finals: HashMap<String, Session> = HashMap::new();
        for op in ops {
            let pick = |i: usize| sessions.get(i % sessions.len().max(1)).map(|s| s.session.id.clone());
            match op {
                Op::Create(k) => {
                    match f.engine.create_session(&clients[k], astack::session::CreateSession::new("u")) {
                        Ok(created) => sessions.push(created),
                        Err(e) => prop_assert_eq!(e.code(), "concurrent_session_limit"),
                    }
                }
                Op::Connect(i) => {
                    if let Some(created) = sessions.get(i % sessions.len().max(1)) {
                        let result = f.engine.connect_session(&worker, &created.session.id, &created.session_token);
                        if let Err(e) = result {
                            prop_assert!(["invalid_transition", "invalid_token"].contains(&e.code()), "{}", e);
                        }
                    }
                }
                Op::End(i, ok) => {
                    if let Some(id) = pick(i) {
                        let outcome = if ok { Outcome::Completed } else { Outcome::Failed };
                        if let Err(e) = f.end(&worker, &id, outcome, None) {
                            prop_assert_eq!(e.code(), "invalid_transition");
                        }
                    }
                }
                Op::Terminate(i) => {
                    if let Some(id) = pick(i) {
                        let k = sessions.iter().position(|s| s.session.id == id).unwrap();
                        let owner = if sessions[k].session.key_id == keys[0].record.id { 0 } else { 1 };
                        f.engine.terminate_session(&clients[owner], &id).unwrap();
                    }
                }
                Op::Advance(ms) => { f.advance(ms); }
                Op::Sweep => { f.engine.sweep().unwrap(); }
            }
            // Every session: once final, never changed again.
            for created in &sessions {
                let current = f.engine.get_session(&clients[0], &created.session.id).unwrap();
                match finals.get(&current.id) {
                    Some(frozen) => prop_assert_eq!(frozen, &current),
                    None if current.status.is_final() => {
                        prop_assert!(current.ended_at.is_some());
                        if current.status == Status::Expired {
                            prop_assert_eq!(current.ended_at, Some(current.expires_at));
                        }
                        finals.insert(current.id.clone(), current);
                    }
                    None => prop_assert!(current.ended_at.is_none()),
                }
            }
            // Slots in use = live sessions, per key.
            let listed = f.engine.list_sessions(&clients[0], 1000).unwrap();
            prop_assert_eq!(listed.len(), sessions.len());
            for key in &keys {
                let live = listed.iter().filter(|s| s.key_id == key.record.id && s.is_live()).count() as u32;
                prop_assert_eq!(f.engine.slots_in_use(&key.record.id).unwrap(), live);
                prop_assert!(live <= 3);
            }
        }
    }
}
