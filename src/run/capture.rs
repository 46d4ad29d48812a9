//! Bounded capture of a pipe: the first `head` bytes and the last `tail`
//! bytes, with the count of what was dropped in between.
//!
//! Memory stays flat however much a tool prints (RELIABILITY 11); bytes are
//! kept raw (no UTF-8 assumption).

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Capture {
    head: Vec<u8>,
    head_cap: usize,
    tail: VecDeque<u8>,
    tail_cap: usize,
    total: u64,
}

/// What a capture kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// Head, a truncation marker if anything was dropped, then tail.
    pub bytes: Vec<u8>,
    /// Bytes the stream carried in total.
    pub total: u64,
    pub truncated: bool,
}

impl Capture {
    pub fn new(head_cap: usize, tail_cap: usize) -> Capture {
        Capture {
            head: Vec::new(),
            head_cap,
            tail: VecDeque::new(),
            tail_cap,
            total: 0,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < self.head_cap {
            let n = data.len().min(self.head_cap - self.head.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if self.tail_cap == 0 || data.is_empty() {
            return;
        }
        if data.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(data);
    }

    pub fn finish(self) -> Captured {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let dropped = self.total - kept;
        let mut bytes = self.head;
        if dropped > 0 {
            bytes.extend_from_slice(
                format!("\n[... {dropped} bytes omitted by bgtask ...]\n").as_bytes(),
            );
        }
        bytes.extend(self.tail);
        Captured {
            bytes,
            total: self.total,
            truncated: dropped > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Capture::new(4, 4);
        c.push(b"abc");
        c.push(b"def");
        let got = c.finish();
        assert_eq!(got.bytes, b"abcdef");
        assert!(!got.truncated);
        assert_eq!(got.total, 6);
    }

    #[test]
    fn flood_keeps_head_and_tail_with_a_marker() {
        let mut c = Capture::new(3, 3);
        for chunk in [&b"0123"[..], b"4567", b"89", b"\xff\xfeZ"] {
            c.push(chunk);
        }
        let got = c.finish();
        assert!(got.truncated);
        assert_eq!(got.total, 13);
        assert_eq!(
            got.bytes,
            b"012\n[... 7 bytes omitted by bgtask ...]\n\xff\xfeZ"
        );
    }

    #[test]
    fn head_only_capture() {
        let mut c = Capture::new(2, 0);
        c.push(b"hello");
        let got = c.finish();
        assert_eq!(got.bytes, b"he\n[... 3 bytes omitted by bgtask ...]\n");
    }
}
