//! A minimal server-sent-events parser (the WHATWG event-stream format): enough for the
//! service's log stream, and strict about one thing that matters here: an event is only
//! delivered once its terminating blank line arrived, so a connection cut in the middle of an
//! event never yields half an event.

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    /// `message` when the event has no `event:` field.
    pub event: String,
    pub data: String,
}

/// Feeds bytes in, takes complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    current: Pending,
}

#[derive(Debug, Default)]
struct Pending {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A `\r\n` pair is one line ending; wait for the `\n` if only the `\r` is here.
            let mut consumed = end + 1;
            if self.buffer[end] == b'\r' {
                match self.buffer.get(end + 1) {
                    Some(b'\n') => consumed += 1,
                    Some(_) => {}
                    None => break,
                }
            }
            let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
            self.buffer.drain(..consumed);
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let pending = std::mem::take(&mut self.current);
            let data = pending.data?;
            return Some(SseEvent {
                id: pending.id,
                event: pending.event.unwrap_or_else(|| "message".to_string()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.current.id = Some(value.to_string()),
            "event" => self.current.event = Some(value.to_string()),
            "data" => match &mut self.current.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.current.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let stream = b": keep-alive\n\nid: 0\nevent: log\ndata: {\"a\":1}\n\nid: 1\r\nevent: step\r\ndata: x\r\ndata: y\r\n\r\n";
        for split in 0..stream.len() {
            let mut p = SseParser::new();
            let mut events = p.feed(&stream[..split]);
            events.extend(p.feed(&stream[split..]));
            assert_eq!(events.len(), 2, "split at {split}");
            assert_eq!(events[0].id.as_deref(), Some("0"));
            assert_eq!(events[0].event, "log");
            assert_eq!(events[1].data, "x\ny");
        }
    }

    #[test]
    fn a_cut_event_is_not_delivered() {
        let mut p = SseParser::new();
        assert!(p.feed(b"id: 3\nevent: log\ndata: half").is_empty());
        // A new connection starts a new parser; the half event is gone.
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"data: whole\n\n").len(), 1);
    }
}
