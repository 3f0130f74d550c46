//! sluice-wal: a per-shard, segmented, append-only write-ahead log of opaque payloads.
//!
//! What it is: the first place every row of a sluice shard goes. Appenders hand it byte
//! payloads; one writer thread per log drains whatever is queued (group commit), writes it with
//! one `writev`, syncs once according to the [`Durability`] mode, and then acknowledges every
//! waiting appender. Records are framed with length, crc32c and codec, optionally compressed
//! (lz4 or zstd), and numbered with [`SeqNo`]s. Segments roll at a size and are named by their
//! first sequence number. Readers iterate from any sequence number; subscriptions are woken
//! when the committed position advances. Retention deletes whole segments, never past the pin
//! the caller sets.
//!
//! What it is not: it knows nothing of rows, schemas or Arrow; the engine decides what a
//! payload means. All I/O goes through [`sluice_vfs::FileSystem`], so tests run it on a
//! simulated disk that crashes, tears writes and fails on purpose.
//!
//! ```text
//!  append()/submit() ─► compress + crc (caller's thread)
//!        │  bounded queue (records + bytes: back-pressure)
//!        ▼
//!  writer thread ─► drain queue ─► writev(frames) ─► fdatasync (Fsync) ─► publish marks
//!        │                                                   │
//!        ├─ roll segment at `segment_bytes`                  ├─► wake appenders (tickets)
//!        └─ retention (bytes / age / truncate_before, ≥ pin) └─► wake readers / subscriptions
//! ```
//!
//! ```
//! use sluice_wal::{Durability, SeqNo, Wal, WalOptions};
//! use sluice_vfs::SimFs;
//!
//! let fs = SimFs::new(1);
//! let opts = WalOptions::default().durability(Durability::Fsync).fs(fs.shared());
//! let wal = Wal::open("/data/s/0/wal", opts.clone())?;
//! let first = wal.append(b"hello".to_vec())?;
//! let second = wal.append_n(b"three rows".to_vec(), 3)?;
//! assert_eq!((first, second), (SeqNo(0), SeqNo(1)));
//! drop(wal);
//!
//! let wal = Wal::open("/data/s/0/wal", opts)?;
//! let records: Vec<_> = wal.reader(SeqNo(0))?.collect::<Result<_, _>>()?;
//! assert_eq!(records[1].payload, b"three rows");
//! assert_eq!(wal.next_seq(), SeqNo(4));
//! # Ok::<(), sluice_wal::Error>(())
//! ```

/// Checking a log directory without changing it.
mod check;
/// Errors of the log.
mod error;
/// Segment header and record frame byte layout, encode/decode, compression.
pub mod frame;
/// Durability, codec and the other options.
mod options;
/// Readers and subscriptions.
mod reader;
/// Opening a directory: checking segments, cutting a torn tail.
mod recovery;
/// Deleting old segments.
mod retention;
/// Segment files: naming, buffered frame reads, checking one segment.
mod segment;
/// The public handle: append, sync, readers, retention, close.
mod wal;
/// The writer thread and group commit.
mod writer;

pub use check::{Finding, LogCheck, check};
pub use error::{Error, Result};
pub use frame::MAX_PAYLOAD;
pub use options::{Codec, Durability, Verify, WalOptions};
pub use reader::{Record, Subscription, WalReader};
pub use wal::{AppendTicket, SeqNo, Wal, WalStats};
