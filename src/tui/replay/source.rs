//! The replay's reader: a thread that owns the read-only journal connection and answers the
//! console's requests over channels, so the UI task never waits on the disk (as the live console
//! never waits on the engine).
//!
//! At start it sends [`Reply::Opened`] with the run's index (id, seq, time of every event) and its
//! landmarks; then it answers each [`Request::Fetch`] with a [`Reply::Chunk`] of envelopes. When
//! following (`cutover watch`), it also polls the journal every [`POLL`] for events the driving
//! process appended and sends them as [`Reply::Appended`], after checking that each appended row
//! chains on to the one before it (the rule `cutover verify` applies; the rows before were
//! verified when the watch opened): a row that does not is reported and following stops. The thread ends when the console drops
//! its request sender or its reply receiver.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::audit::timeline::{self, IndexEntry, Landmark};
use crate::engine::{Envelope, RunId};
use crate::journal::chain::{canonical_envelope, chain_hash};
use crate::journal::{JournalError, JournalReader, RawRow};

/// How often a watch looks for new events.
pub const POLL: Duration = Duration::from_millis(250);

/// What the console asks the reader for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// The envelopes at index positions `from..to` of the run.
    Fetch { from: usize, to: usize },
}

/// What the reader sends back.
#[derive(Debug)]
pub enum Reply {
    /// The run's index and landmarks as they were when the reader started.
    Opened {
        index: Vec<IndexEntry>,
        landmarks: Vec<Landmark>,
    },
    /// The envelopes of a fetch, the first at index position `from`.
    Chunk { from: usize, envelopes: Vec<Envelope> },
    /// Watch only: events appended since the last look, with their index entries and landmarks.
    Appended {
        index: Vec<IndexEntry>,
        envelopes: Vec<Envelope>,
        landmarks: Vec<Landmark>,
    },
    /// The journal could not be read (the message names the row); the console shows it.
    Failed(String),
}

/// Starts the reader thread for `run` of the journal at `path`. `follow`: poll for appended events.
pub fn spawn(path: PathBuf, run: RunId, follow: bool) -> (Sender<Request>, UnboundedReceiver<Reply>) {
    let (req_tx, req_rx) = std::sync::mpsc::channel::<Request>();
    let (reply_tx, reply_rx) = unbounded_channel::<Reply>();
    let spawned = std::thread::Builder::new()
        .name("cutover-replay-reader".into())
        .spawn(move || {
            if let Err(e) = serve(&path, &run, follow, &req_rx, &reply_tx) {
                let _ = reply_tx.send(Reply::Failed(e.to_string()));
            }
        });
    if let Err(e) = spawned {
        // Nothing will ever answer: say so on the channel the console reads.
        let (tx, rx) = unbounded_channel();
        let _ = tx.send(Reply::Failed(format!("could not start the journal reader: {e}")));
        return (req_tx, rx);
    }
    (req_tx, reply_rx)
}

fn serve(
    path: &std::path::Path,
    run: &RunId,
    follow: bool,
    requests: &Receiver<Request>,
    replies: &UnboundedSender<Reply>,
) -> Result<(), JournalError> {
    let reader = JournalReader::open_read_only(path)?;
    // One read transaction, so the index, the landmarks and the watch's starting head agree.
    let opened = reader.snapshot(|r| -> Result<_, JournalError> {
        Ok((
            timeline::index_after(r, run, 0)?,
            timeline::landmarks(r, run)?,
            head(r)?,
        ))
    })?;
    let (mut index, landmarks, mut head) = opened?;
    if replies
        .send(Reply::Opened {
            index: index.clone(),
            landmarks,
        })
        .is_err()
    {
        return Ok(());
    }
    loop {
        let request = if follow {
            match requests.recv_timeout(POLL) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            match requests.recv() {
                Ok(r) => Some(r),
                Err(_) => return Ok(()),
            }
        };
        let reply = match request {
            Some(Request::Fetch { from, to }) => fetch(&reader, run, &index, from, to)?,
            None => match poll(&reader, run, &mut index, &mut head)? {
                Some(r @ Reply::Failed(_)) => {
                    let _ = replies.send(r);
                    return Ok(());
                }
                Some(r) => r,
                None => continue,
            },
        };
        if replies.send(reply).is_err() {
            return Ok(());
        }
    }
}

fn fetch(
    reader: &JournalReader,
    run: &RunId,
    index: &[IndexEntry],
    from: usize,
    to: usize,
) -> Result<Reply, JournalError> {
    let to = to.min(index.len());
    if from >= to {
        return Ok(Reply::Chunk {
            from,
            envelopes: Vec::new(),
        });
    }
    let envelopes = timeline::envelopes_between(reader, run, index[from].seq, index[to - 1].seq)?;
    if envelopes.len() != to - from {
        return Ok(Reply::Failed(format!(
            "events {}..{} of the run changed while being replayed",
            index[from].id,
            index[to - 1].id
        )));
    }
    Ok(Reply::Chunk { from, envelopes })
}

/// The last row the watch has checked: appended rows must chain on to it.
struct Head {
    id: i64,
    hash: String,
}

fn head(reader: &JournalReader) -> Result<Head, JournalError> {
    let (id, hash) = reader.chain_tip()?;
    Ok(Head { id, hash })
}

/// Rows appended since `head` (any run: the chain runs through the whole file), each checked to
/// chain on to the one before as `cutover verify` checks it; the run's own become a reply.
fn poll(
    reader: &JournalReader,
    run: &RunId,
    index: &mut Vec<IndexEntry>,
    head: &mut Head,
) -> Result<Option<Reply>, JournalError> {
    let mut fresh = Vec::new();
    let mut envelopes = Vec::new();
    for row in reader.rows_after(head.id, 4096)? {
        let RawRow {
            id,
            run_id,
            seq,
            at,
            kind,
            payload,
            prev_hash: prev,
            hash,
        } = row;
        let bad = |reason: &str| {
            Reply::Failed(format!(
                "appended event {id} does not verify: {reason}; stopped following"
            ))
        };
        if id != head.id + 1 || prev != head.hash {
            return Ok(Some(bad("it does not chain on to the event before it")));
        }
        if chain_hash(&prev, &canonical_envelope(&run_id, seq, &at, &kind, &payload)) != hash {
            return Ok(Some(bad("its hash does not match its contents")));
        }
        head.id = id;
        head.hash = hash;
        if run_id != run.0 || index.last().is_some_and(|e| e.seq >= seq) {
            continue;
        }
        let env = timeline::decode(run, id, seq, &at, &payload)?;
        fresh.push(IndexEntry { id, seq, at: env.at });
        envelopes.push(env);
    }
    if envelopes.is_empty() {
        return Ok(None);
    }
    let landmarks = envelopes.iter().filter_map(timeline::landmark).collect();
    index.extend_from_slice(&fresh);
    Ok(Some(Reply::Appended {
        index: fresh,
        envelopes,
        landmarks,
    }))
}
