//! What the parent of many-producers saw on the queue: which child's array came,
//! how often, and whether each was whole and right.

use anyhow::Result;
use callback::recv_unless_one_failed;
use ipc_channel::ipc::IpcReceiver;
use plumbing::Child;
use plumbing::show::{seconds, size};

use crate::parcel::{Parcel, who};

pub struct Arrivals {
    /// How many arrays came from each child (index 0 is child 1).
    arrivals: Vec<u32>,
    shape: (usize, usize),
    pub elements: usize,
    pub problems: Vec<String>,
}

impl Arrivals {
    fn new(producers: u32, shape: (usize, usize)) -> Arrivals {
        Arrivals { arrivals: vec![0; producers as usize], shape, elements: 0, problems: Vec::new() }
    }

    /// Gets until the queue closes, that is until every child has exited. Draining to
    /// the end, rather than stopping after `producers` arrays, is what proves that
    /// each child put exactly once. A bad array is noted, not fatal, so the other
    /// children can still deliver theirs; a child that dies ends the wait at once.
    pub fn get_until_closed(
        gets: &IpcReceiver<Parcel>,
        children: &mut [Child],
        producers: u32,
        n: usize,
    ) -> Result<Arrivals> {
        let mut arrivals = Arrivals::new(producers, (n, n));
        while let Some(parcel) = recv_unless_one_failed(gets, children)? {
            arrivals.note(parcel);
        }
        Ok(arrivals)
    }

    /// Opens a parcel from the queue and notes what came, printing one line per array.
    pub fn note(&mut self, parcel: Parcel) {
        let id = parcel.from;
        let who = who(id);
        let Some(count) = self.arrivals.get_mut((id as usize).wrapping_sub(1)) else {
            self.problems.push(format!("an array from unknown {who}"));
            return;
        };
        *count += 1;
        if *count > 1 {
            self.problems.push(format!("{who} arrived {count} times"));
        }
        match parcel.open() {
            Ok(got) => {
                let expected = f64::from(id);
                let wrong = got.array.iter().filter(|&&x| x != expected).count();
                self.elements += got.array.len();
                if got.array.dim() != self.shape || wrong > 0 {
                    self.problems.push(format!(
                        "{who}'s array has shape {:?} and {wrong} elements that are not {id}",
                        got.array.dim()
                    ));
                }
                println!(
                    "parent: got {who}'s array, {} of {} values {expected:.1} ({}, {})",
                    got.array.len() - wrong,
                    got.array.len(),
                    size(got.bytes as u64),
                    seconds(got.took)
                );
            }
            Err(err) => self.problems.push(format!("{err:#}")),
        }
    }

    /// The children whose array never came.
    pub fn missing(&self) -> Vec<u32> {
        (1..).zip(&self.arrivals).filter(|(_, count)| **count == 0).map(|(id, _)| id).collect()
    }
}
