//! How many jobs and analyzer processes run at once: the config's
//! `max_concurrent_tasks` (or `--dev`'s 1), as a count of jobs and as the
//! semaphore every analyzer process of every job holds a permit of, so one
//! limit holds across jobs. A reload grows or shrinks it in place.

use std::sync::Arc;

use tokio::sync::Semaphore;

pub(super) struct Workers {
    slots: Arc<Semaphore>,
    /// Jobs at once.
    count: usize,
    /// Whatever the config says (`--dev`: 1).
    fixed: Option<usize>,
    /// The size of `slots`.
    size: usize,
}

impl Workers {
    /// Sized for `configured` (unless fixed); the count in effect.
    pub(super) fn new(fixed: Option<usize>, configured: usize) -> Workers {
        let count = fixed.unwrap_or(configured).max(1);
        Workers {
            slots: Arc::new(Semaphore::new(count)),
            count,
            fixed,
            size: count,
        }
    }

    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// The analyzer slots jobs share.
    pub(super) fn slots(&self) -> Arc<Semaphore> {
        self.slots.clone()
    }

    /// The config says `configured` now; returns the count in effect.
    /// Running jobs hold permits of this same semaphore, so the new limit
    /// holds for all; shrinking takes the surplus permits as they come
    /// free.
    pub(super) fn resize(&mut self, configured: usize) -> usize {
        let count = self.fixed.unwrap_or(configured).max(1);
        if count > self.size {
            self.slots.add_permits(count - self.size);
        } else if count < self.size {
            let surplus = u32::try_from(self.size - count).unwrap_or(u32::MAX);
            let slots = self.slots.clone();
            tokio::spawn(async move {
                if let Ok(permits) = slots.acquire_many_owned(surplus).await {
                    permits.forget();
                }
            });
        }
        self.size = count;
        self.count = count;
        count
    }
}
