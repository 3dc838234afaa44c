//! Eight threads creating, connecting and terminating sessions on shared keys with small
//! concurrent limits: the limits hold throughout and the final counts add up.

mod common;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use astack::limits::KeyLimits;
use astack::session::{CreateSession, Outcome, Status};
use astack::Operation;
use common::*;

const THREADS: usize = 8;
const ROUNDS: usize = 300;
const LIMITS: [u32; 3] = [1, 2, 3];

#[test]
fn eight_threads_never_exceed_a_keys_concurrent_limit() {
    let f = Fixture::new();
    let keys: Vec<_> = LIMITS
        .iter()
        .map(|&limit| {
            f.key_with_limits(
                Some("acme"),
                &["sessions:read", "sessions:write", "billing:read"],
                KeyLimits {
                    requests_per_minute: Some(10_000_000),
                    requests_per_hour: Some(100_000_000),
                    concurrent_sessions: Some(limit),
                },
            )
        })
        .collect();
    let worker = f.operator_worker();
    let creates: Vec<AtomicUsize> = LIMITS.iter().map(|_| AtomicUsize::new(0)).collect();
    let ends: Vec<AtomicUsize> = LIMITS.iter().map(|_| AtomicUsize::new(0)).collect();
    let refused = AtomicUsize::new(0);
    let connected = AtomicUsize::new(0);
    let denied = AtomicUsize::new(0);
    let authorized = AtomicUsize::new(0);
    let max_seen: Vec<AtomicU32> = LIMITS.iter().map(|_| AtomicU32::new(0)).collect();
    let created_ids = parking_lot::Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (f, keys, worker) = (&f, &keys, &worker);
            let (creates, ends, refused, authorized, max_seen, created_ids, connected) =
                (&creates, &ends, &refused, &authorized, &max_seen, &created_ids, &connected);
            let denied = &denied;
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let k = (thread + round) % keys.len();
                    let key = &keys[k];
                    let principal = match f.engine.authorize(&key.key, Operation::SessionCreate) {
                        Ok(authorization) => {
                            authorized.fetch_add(1, Ordering::Relaxed);
                            authorization.principal
                        }
                        Err(denial) => {
                            assert_eq!(denial.error.code(), "concurrent_session_limit");
                            refused.fetch_add(1, Ordering::Relaxed);
                            denied.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    let created = match f.engine.create_session(&principal, CreateSession::new("u")) {
                        Ok(created) => created,
                        Err(error) => {
                            assert_eq!(error.code(), "concurrent_session_limit");
                            refused.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    creates[k].fetch_add(1, Ordering::SeqCst);
                    let in_use = f.engine.slots_in_use(&key.record.id).unwrap();
                    assert!(in_use <= LIMITS[k], "key {k}: {in_use} slots > {}", LIMITS[k]);
                    // Successful creates minus (counted) ends can never run past the limit.
                    // (Creates read first: ends read later can only be larger, so this is a lower
                    // bound of the sessions live at some instant.)
                    let created_so_far = creates[k].load(Ordering::SeqCst) as i64;
                    let live_bound = created_so_far - ends[k].load(Ordering::SeqCst) as i64;
                    assert!(live_bound <= i64::from(LIMITS[k]), "key {k}: {live_bound} live");
                    max_seen[k].fetch_max(in_use, Ordering::Relaxed);
                    created_ids.lock().push(created.session.id.clone());
                    let id = &created.session.id;
                    if round % 3 != 1 {
                        f.engine.connect_session(worker, id, &created.session_token).unwrap();
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                    // Counted just before the end, so that creates − ends never exceeds the
                    // sessions really live.
                    ends[k].fetch_add(1, Ordering::SeqCst);
                    match round % 3 {
                        0 => drop(f.end(worker, id, Outcome::Completed, None).unwrap()),
                        1 => drop(f.engine.terminate_session(&principal, id).unwrap()),
                        _ => drop(f.end(worker, id, Outcome::Failed, Some("test")).unwrap()),
                    }
                }
            });
        }
        // An observer samples the slots while the workers run.
        let (f, keys) = (&f, &keys);
        scope.spawn(move || {
            for _ in 0..2_000 {
                for (k, key) in keys.iter().enumerate() {
                    let in_use = f.engine.slots_in_use(&key.record.id).unwrap();
                    assert!(in_use <= LIMITS[k], "observer: key {k} holds {in_use}");
                }
            }
        });
    });

    // Everything ended; every slot is free.
    let total_created: usize = creates.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    let total_ended: usize = ends.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert_eq!(total_created, total_ended);
    assert_eq!(total_created + refused.load(Ordering::SeqCst), THREADS * ROUNDS);
    assert!(total_created > 0);
    for (k, key) in keys.iter().enumerate() {
        assert_eq!(f.engine.slots_in_use(&key.record.id).unwrap(), 0);
        assert!(max_seen[k].load(Ordering::Relaxed) >= 1);
    }
    let client = f.principal(&keys[0]);
    let sessions = f.engine.list_sessions(&client, 1_000).unwrap();
    let ids = created_ids.into_inner();
    assert_eq!(ids.len(), total_created);
    let all = f.engine.metrics(&f.admin).unwrap();
    assert_eq!(all.sessions["PENDING"] + all.sessions["ACTIVE"], 0);
    assert_eq!(all.sessions.values().sum::<usize>(), total_created);
    assert!(sessions.iter().all(|s| s.status.is_final()));
    let completed = all.sessions["COMPLETED"];
    let failed = all.sessions["FAILED"];
    assert_eq!(completed + failed, total_created);
    assert_eq!(all.sessions["EXPIRED"], 0);
    let ended_by_worker = sessions.iter().filter(|s| s.end_reason.as_deref() == Some("test")).count();
    assert_eq!(ended_by_worker, sessions.iter().filter(|s| s.status == Status::Failed).count());

    // Usage: every authorized request was metered once.
    let usage = f.engine.usage(&client).unwrap();
    assert_eq!(usage.requests, authorized.load(Ordering::SeqCst) as u64);
    // Audit: one creation and one final transition per session.
    let audit = f.engine.audit(&f.admin, 100_000).unwrap();
    let count = |action: &str| audit.iter().filter(|r| r.action == action).count();
    assert_eq!(count("session.created"), total_created);
    assert_eq!(count("session.completed") + count("session.failed"), total_created);
    assert_eq!(count("session.failed"), failed);
    assert_eq!(count("session.connected"), connected.load(Ordering::SeqCst));
    assert_eq!(refused_by_authorize(&audit), denied.load(Ordering::SeqCst));
}

/// Denied requests are audited: each one names the concurrent-session limit.
fn refused_by_authorize(audit: &[astack::audit::AuditRecord]) -> usize {
    audit
        .iter()
        .filter(|r| r.action == "request.denied")
        .inspect(|r| assert_eq!(r.detail["code"], "concurrent_session_limit"))
        .count()
}

/// Threads sweeping at once expire each due session once: the counts they return add up to
/// the sessions due, each has one `session.expired` record, and none holds a slot after.
#[test]
fn sweeps_at_once_expire_each_session_once() {
    const SESSIONS: usize = 900; // under the default worker's capacity (1,000)
    let f = Fixture::new();
    let unlimited = KeyLimits {
        requests_per_minute: Some(10_000_000),
        requests_per_hour: Some(100_000_000),
        concurrent_sessions: Some(10_000),
    };
    let key = f.key_with_limits(Some("acme"), &["sessions:read", "sessions:write"], unlimited);
    let client = f.principal(&key);
    let mut ids: Vec<String> = (0..SESSIONS).map(|_| f.session(&client).session.id).collect();
    f.advance(300_000); // the default pending TTL: every session is due
    let expired = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| expired.fetch_add(f.engine.sweep().unwrap(), Ordering::SeqCst));
        }
    });
    assert_eq!(expired.into_inner(), SESSIONS);
    assert_eq!(f.engine.sweep().unwrap(), 0);
    assert_eq!(f.engine.slots_in_use(&key.record.id).unwrap(), 0);
    let audit = f.engine.audit(&f.admin, 100_000).unwrap();
    let mut audited: Vec<String> =
        audit.iter().filter(|r| r.action == "session.expired").filter_map(|r| r.target.clone()).collect();
    audited.sort();
    ids.sort();
    assert_eq!(audited, ids);
    for id in &ids {
        assert_eq!(f.engine.get_session(&client, id).unwrap().status, Status::Expired);
    }
}
