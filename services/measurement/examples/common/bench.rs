//! What measurement's benchmarks share: a store on a fresh PostgreSQL database, PostgreSQL's
//! binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary
//! Format": the baseline the ingest is compared with, and the fastest way to seed millions of
//! rows; only BIGINT and TEXT columns), and the load average printed with every figure.

use chorus_kit::clock::Clock;
use chorus_kit::events::outbox::Outbox;
use chorus_kit::storage::{Database, KIT_MIGRATIONS, testing};
use chorus_kit::timers::Timers;
use chorus_measurement::store::Store;
use sqlx::PgConnection;

/// Measurement's store on a fresh PostgreSQL database with its tables, on the system clock;
/// the database's URL too.
pub(crate) async fn fresh_store() -> (String, Database, Store, Clock) {
    let url = testing::fresh_postgres_url().await.unwrap();
    let db = Database::connect(&url, &[&KIT_MIGRATIONS, &chorus_measurement::MIGRATIONS], 8)
        .await
        .unwrap();
    let clock = Clock::system();
    let outbox = Outbox::new();
    let timers = Timers::new(db.clone(), outbox.clone(), clock.clone());
    let store = Store::new(db.clone(), outbox, clock.clone(), timers, 168);
    (url, db, store, clock)
}

/// One column's value.
pub(crate) enum Field<'a> {
    Int(i64),
    Text(&'a str),
}

/// Rows in the binary format, header to trailer.
pub(crate) struct Binary {
    buf: Vec<u8>,
    pub(crate) rows: u64,
}

impl Default for Binary {
    fn default() -> Self {
        Binary::new()
    }
}

impl Binary {
    pub(crate) fn new() -> Self {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Binary { buf, rows: 0 }
    }

    pub(crate) fn row(&mut self, fields: &[Field<'_>]) {
        self.buf.extend_from_slice(&(fields.len() as i16).to_be_bytes());
        for f in fields {
            match f {
                Field::Int(v) => {
                    self.buf.extend_from_slice(&8i32.to_be_bytes());
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                Field::Text(s) => {
                    self.buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    self.buf.extend_from_slice(s.as_bytes());
                }
            }
        }
        self.rows += 1;
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// `COPY target FROM STDIN (FORMAT binary)` of `data`, sent in 1 MiB messages; the rows copied.
pub(crate) async fn copy_in(conn: &mut PgConnection, target: &str, data: &[u8]) -> u64 {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
        .await
        .unwrap();
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    copy.finish().await.unwrap()
}

/// The 1-minute load average, for the figures (the machine is shared).
pub(crate) fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
