//! The replay's reader: a thread that owns the read-only journal connection and answers the
//! console's requests over channels, so the UI task never waits on the disk (as the live console
//! never waits on the engine).
//!
//! At start it sends [`Reply::Opened`] with the run's index (id, seq, time of every event) and its
//! landmarks; then it answers each [`Request::Fetch`] with a [`Reply::Chunk`] of envelopes. When
//! following (`cutover watch`), it also polls the journal every [`POLL`] for events the driving
//! process appended and sends them as [`Reply::Appended`]. The thread ends when the console drops
//! its request sender or its reply receiver.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::audit::timeline::{self, IndexEntry, Landmark};
use crate::engine::{Envelope, RunId};
use crate::journal::{JournalError, JournalReader};

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
    let mut index = timeline::index_after(&reader, run, 0)?;
    let landmarks = timeline::landmarks(&reader, run)?;
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
            None => match poll(&reader, run, &mut index)? {
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

/// New events of the run since the index's last one, if any.
fn poll(
    reader: &JournalReader,
    run: &RunId,
    index: &mut Vec<IndexEntry>,
) -> Result<Option<Reply>, JournalError> {
    let last = index.last().map_or(0, |e| e.seq);
    let fresh = timeline::index_after(reader, run, last)?;
    let Some(end) = fresh.last().map(|e| e.seq) else {
        return Ok(None);
    };
    let envelopes = timeline::envelopes_between(reader, run, last + 1, end)?;
    // Rows committed between the two reads are picked up by the next poll.
    let fresh: Vec<IndexEntry> = fresh.into_iter().take(envelopes.len()).collect();
    let landmarks = envelopes.iter().filter_map(timeline::landmark).collect();
    index.extend_from_slice(&fresh);
    Ok(Some(Reply::Appended {
        index: fresh,
        envelopes,
        landmarks,
    }))
}
