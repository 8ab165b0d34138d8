//! Where a service's `image` is written in a YAML file: the scalar's byte span, its
//! quote style and its anchor, found with yaml-rust2's marked events so that an edit
//! replaces those bytes and nothing else.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// How a scalar is quoted; the edit keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    /// `image: registry/api:v1`
    Plain,
    /// `image: 'registry/api:v1'`
    Single,
    /// `image: "registry/api:v1"`
    Double,
}

/// The scalar holding a service's image in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    /// The value, as YAML reads it (before interpolation).
    pub value: String,
    /// The bytes of the value in the file, quotes included.
    pub span: std::ops::Range<usize>,
    /// 1-based line of the value.
    pub line: usize,
    /// The quote style.
    pub quote: Quote,
    /// The scalar's anchor when it is reached through an alias (`image: *app`) or
    /// carries one (`image: &app …`): other services may share it.
    pub anchored: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Scalar {
        value: String,
        style: TScalarStyle,
        /// Character index of the event's mark.
        start: usize,
        line: usize,
        anchor: usize,
    },
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    Alias(usize),
}

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: HashMap<usize, Node>,
}

impl Builder<'_> {
    fn next(&mut self) -> Result<(Event, yaml_rust2::scanner::Marker), String> {
        self.parser
            .next_token()
            .map_err(|e| format!("line {}: {}", e.marker().line(), e.info()))
    }

    fn node(&mut self, event: Event, mark: yaml_rust2::scanner::Marker) -> Result<Node, String> {
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, _) => (
                Node::Scalar {
                    value,
                    style,
                    start: mark.index(),
                    line: mark.line(),
                    anchor,
                },
                anchor,
            ),
            Event::Alias(id) => (Node::Alias(id), 0),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, m) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, m)?);
                }
                (Node::Seq(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (ev, m) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(ev, m)?;
                    let (ev, m) = self.next()?;
                    let value = self.node(ev, m)?;
                    entries.push((key, value));
                }
                (Node::Map(entries), anchor)
            }
            other => return Err(format!("unexpected YAML event {other:?}")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

/// A document's root and its anchored nodes by id.
type Document = (Node, HashMap<usize, Node>);

/// The first document of `text` as a node tree, with its anchors.
fn read(text: &str) -> Result<Option<Document>, String> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
    };
    loop {
        let (ev, mark) = b.next()?;
        match ev {
            Event::StreamEnd => return Ok(None),
            Event::StreamStart | Event::DocumentStart | Event::Nothing => {}
            Event::DocumentEnd => return Ok(None),
            ev => {
                let root = b.node(ev, mark)?;
                return Ok(Some((root, b.anchors)));
            }
        }
    }
}

fn resolve<'n>(node: &'n Node, anchors: &'n HashMap<usize, Node>) -> &'n Node {
    match node {
        Node::Alias(id) => anchors.get(id).unwrap_or(node),
        _ => node,
    }
}

fn key_is(node: &Node, key: &str) -> bool {
    matches!(node, Node::Scalar { value, .. } if value == key)
}

/// The value under `key` of a mapping, following `<<` merge keys as YAML does: the
/// mapping's own keys first, then the merged mappings in order.
fn get<'n>(
    map: &'n Node,
    key: &str,
    anchors: &'n HashMap<usize, Node>,
    depth: u8,
) -> Option<&'n Node> {
    let Node::Map(entries) = resolve(map, anchors) else {
        return None;
    };
    if let Some((_, v)) = entries.iter().rev().find(|(k, _)| key_is(k, key)) {
        return Some(v);
    }
    if depth > 8 {
        return None;
    }
    for (_, v) in entries.iter().filter(|(k, _)| key_is(k, "<<")) {
        let sources: Vec<&Node> = match resolve(v, anchors) {
            Node::Seq(items) => items.iter().collect(),
            other => vec![other],
        };
        for source in sources {
            if let Some(found) = get(source, key, anchors, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

/// Where `<service>.image` is written under `services:` in `text` (both formats keep
/// services there), or `None` when this file does not set it.
pub(crate) fn find_image(text: &str, service: &str) -> Result<Option<Site>, String> {
    let Some((root, anchors)) = read(text)? else {
        return Ok(None);
    };
    let Some(image) = get(&root, "services", &anchors, 0)
        .and_then(|services| get(services, service, &anchors, 0))
        .and_then(|svc| get(svc, "image", &anchors, 0))
    else {
        return Ok(None);
    };
    let via_alias = matches!(image, Node::Alias(_));
    let Node::Scalar {
        value,
        style,
        start,
        line,
        anchor,
    } = resolve(image, &anchors)
    else {
        return Err(format!(
            "the image of `{service}` is not a plain string; write `image: registry/name:tag`"
        ));
    };
    let (span, quote) = scalar_span(text, *start, value, *style).ok_or_else(|| {
        format!(
            "line {line}: the image of `{service}` is written over several lines or with \
             escapes; write it on one line, plain or quoted"
        )
    })?;
    Ok(Some(Site {
        value: value.clone(),
        span,
        line: *line,
        quote,
        anchored: via_alias || *anchor != 0,
    }))
}

/// The byte span of a one-line scalar whose event mark is at character `start`: an
/// anchor or tag before it is skipped; quoted scalars include their quotes. `None` for
/// block scalars, multi-line scalars and escapes.
fn scalar_span(
    text: &str,
    start: usize,
    value: &str,
    style: TScalarStyle,
) -> Option<(std::ops::Range<usize>, Quote)> {
    let mut at = text.char_indices().nth(start).map(|(b, _)| b)?;
    // `&anchor` and `!tag` may precede the scalar itself.
    while matches!(text[at..].chars().next(), Some('&' | '!')) {
        let len = text[at..].find([' ', '\t', '\n', '\r'])?;
        at += len;
        at += text[at..].len() - text[at..].trim_start_matches([' ', '\t']).len();
    }
    let rest = &text[at..];
    let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
    let rest = &rest[..line_end];
    match style {
        TScalarStyle::Plain => rest
            .starts_with(value)
            .then(|| (at..at + value.len(), Quote::Plain)),
        TScalarStyle::SingleQuoted => {
            let written = format!("'{}'", value.replace('\'', "''"));
            rest.starts_with(&written)
                .then(|| (at..at + written.len(), Quote::Single))
        }
        TScalarStyle::DoubleQuoted => {
            let written = format!("\"{value}\"");
            (!value.contains(['\\', '"']) && rest.starts_with(&written))
                .then(|| (at..at + written.len(), Quote::Double))
        }
        _ => None,
    }
}

/// `value` written in `quote` style.
pub(crate) fn render(value: &str, quote: Quote) -> String {
    match quote {
        Quote::Plain => value.to_string(),
        Quote::Single => format!("'{}'", value.replace('\'', "''")),
        Quote::Double => format!("\"{value}\""),
    }
}
