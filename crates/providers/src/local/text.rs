//! Plain-text analysis for extractive planning: sections, paragraphs, sentences, words.
//!
//! Two layouts are recognised (see `examples/texts/LICENSES.txt`):
//! - **books**: sections start at lines like `CHAPTER I.` (a following short line is the
//!   chapter's name);
//! - **collections** (Aesop's fables): blocks separated by two or more blank lines, each a title
//!   line, the body, and often a one-sentence moral as its last paragraph.

/// One section of a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Heading (`CHAPTER I.`, `The Hare and the Tortoise`).
    pub title: String,
    /// Name under the heading (`Down the Rabbit-Hole`), if any.
    pub subtitle: Option<String>,
    /// Body paragraphs, whitespace normalised.
    pub paragraphs: Vec<String>,
    /// A fable's moral (its last one-sentence paragraph), if any.
    pub moral: Option<String>,
}

/// Splits `text` into sections.
pub fn sections(text: &str) -> Vec<Section> {
    let text = text
        .trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    if lines.iter().any(|l| is_chapter_heading(l)) {
        book_sections(&lines)
    } else {
        block_sections(&lines)
    }
}

fn is_chapter_heading(line: &str) -> bool {
    let line = line.trim();
    let Some(rest) = line.strip_prefix("CHAPTER ") else {
        return false;
    };
    let number = rest.trim_end_matches('.');
    !number.is_empty()
        && number.len() <= 8
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || "IVXLC".contains(c))
}

fn paragraphs(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(normalise_space(&current.join(" ")));
                current.clear();
            }
        } else {
            current.push(line.trim());
        }
    }
    if !current.is_empty() {
        out.push(normalise_space(&current.join(" ")));
    }
    out
}

/// Collapses runs of whitespace into single spaces and trims.
pub fn normalise_space(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn book_sections(lines: &[&str]) -> Vec<Section> {
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| is_chapter_heading(lines[i]))
        .collect();
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        let mut body = &lines[start + 1..end];
        let mut subtitle = None;
        if let Some(first) = body.first() {
            let first = first.trim();
            if !first.is_empty() && first.len() <= 80 && !ends_sentence(first) {
                subtitle = Some(first.to_string());
                body = &body[1..];
            }
        }
        out.push(Section {
            title: lines[start].trim().to_string(),
            subtitle,
            paragraphs: paragraphs(body),
            moral: None,
        });
    }
    out
}

fn ends_sentence(s: &str) -> bool {
    s.trim_end_matches(['”', '’', '"', '\'', ')'])
        .ends_with(['.', '!', '?'])
}

fn block_sections(lines: &[&str]) -> Vec<Section> {
    // Blocks are separated by two or more blank lines.
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut blanks = 0;
    for line in lines {
        if line.trim().is_empty() {
            blanks += 1;
            current.push(line);
            continue;
        }
        if blanks >= 2 && current.iter().any(|l| !l.trim().is_empty()) {
            blocks.push(std::mem::take(&mut current));
        }
        blanks = 0;
        current.push(line);
    }
    if current.iter().any(|l| !l.trim().is_empty()) {
        blocks.push(current);
    }
    let mut out = Vec::new();
    for block in blocks {
        let start = block.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
        let first = block[start].trim();
        let (title, body) = if first.len() <= 100 && !ends_sentence(first) {
            (first.to_string(), &block[start + 1..])
        } else {
            (title_from(first), &block[start..])
        };
        let mut paragraphs = paragraphs(body);
        if paragraphs.is_empty() {
            continue;
        }
        let mut moral = None;
        if paragraphs.len() >= 2 {
            let last = paragraphs.last().unwrap();
            let words = last.split_whitespace().count();
            let opens_quote = last.starts_with(['“', '"', '‘', '\'']);
            if words <= 25 && !opens_quote && sentences(last).len() == 1 {
                moral = paragraphs.pop();
            }
        }
        out.push(Section {
            title,
            subtitle: None,
            paragraphs,
            moral,
        });
    }
    out
}

/// A title made of the first words of a text that has none.
fn title_from(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(6).collect();
    let title = words.join(" ");
    title.trim_end_matches([',', ';', ':', '.']).to_string() + "…"
}

/// Finds a section by title (or subtitle), ignoring case, spacing and a trailing full stop.
pub fn find<'a>(sections: &'a [Section], wanted: &str) -> Option<&'a Section> {
    let key = |s: &str| {
        normalise_space(s)
            .trim_end_matches('.')
            .to_lowercase()
            .replace('’', "'")
    };
    let wanted = key(wanted);
    sections.iter().find(|s| {
        key(&s.title) == wanted || s.subtitle.as_deref().map(key).as_deref() == Some(&wanted)
    })
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "prof",
];

/// Splits a paragraph into sentences, keeping every character: joining the result with single
/// spaces gives the paragraph back.
pub fn sentences(paragraph: &str) -> Vec<String> {
    let chars: Vec<char> = paragraph.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        if matches!(chars[i], '.' | '!' | '?') {
            // Take the whole run of terminators and closing marks.
            let mut end = i + 1;
            while end < chars.len()
                && matches!(chars[end], '.' | '!' | '?' | '”' | '’' | '"' | '\'' | ')')
            {
                end += 1;
            }
            let next = chars[end..].iter().position(|c| !c.is_whitespace());
            let boundary = match next {
                None => true,
                Some(0) => false,
                Some(k) => {
                    let c = chars[end + k];
                    c.is_uppercase() || c.is_ascii_digit() || matches!(c, '“' | '"' | '‘' | '(')
                }
            };
            let word: String = chars[start..i]
                .iter()
                .rev()
                .take_while(|c| !c.is_whitespace())
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
                .to_lowercase();
            let abbreviation = chars[i] == '.'
                && ABBREVIATIONS.contains(&word.trim_start_matches(['(', '“', '"']));
            if boundary && !abbreviation {
                let s: String = chars[start..end].iter().collect();
                let s = s.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                start = end;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    let rest: String = chars[start..].iter().collect();
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_string());
    }
    out
}

/// Common English words that say nothing about what a scene shows.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "came",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "down",
    "during",
    "each",
    "even",
    "ever",
    "every",
    "few",
    "for",
    "from",
    "further",
    "get",
    "go",
    "going",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "know",
    "last",
    "let",
    "like",
    "little",
    "made",
    "make",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "never",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "ought",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "said",
    "same",
    "say",
    "saying",
    "see",
    "seemed",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "though",
    "thought",
    "thus",
    "through",
    "thy",
    "thee",
    "thou",
    "to",
    "too",
    "took",
    "two",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "very",
    "was",
    "way",
    "we",
    "well",
    "went",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "quite",
    "began",
    "time",
    "day",
    "away",
    "back",
    "come",
    "said",
    "replied",
    "without",
    "rather",
    "soon",
    "still",
    "another",
    "first",
    "great",
    "good",
    "old",
    "new",
    "long",
    "oh",
    "dear",
    "alas",
    "ye",
    "sir",
    "upon",
    "whose",
    "whether",
    "nothing",
    "anything",
    "something",
    "yes",
];

/// Returns whether `word` (lowercase) is a stopword.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// A word of a sentence: its surface form and its stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// As written (apostrophes normalised).
    pub surface: String,
    /// Lowercase stem (plural and verb endings removed).
    pub stem: String,
    /// Capitalised somewhere other than a sentence's start.
    pub proper: bool,
}

/// Content words of `sentence` (stopwords and one- or two-letter words dropped).
pub fn content_words(sentence: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut first = true;
    for raw in sentence.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        let word = raw.trim_matches(['\'', '’']).replace('’', "'");
        if word.is_empty() {
            continue;
        }
        let at_start = first;
        first = false;
        let word = word.strip_suffix("'s").unwrap_or(&word).to_string();
        let lower = word.to_lowercase();
        if lower.chars().count() < 3
            || is_stopword(&lower)
            || lower.chars().all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let capitalised = word.chars().next().is_some_and(char::is_uppercase);
        let all_caps = word.chars().all(|c| !c.is_lowercase());
        out.push(Word {
            surface: if all_caps {
                title_case(&lower)
            } else {
                word.clone()
            },
            stem: stem(&lower),
            proper: capitalised && !at_start && !all_caps,
        });
    }
    out
}

fn title_case(lower: &str) -> String {
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A light English stemmer: folds plurals and common verb endings so `cats`, `cat` and
/// `hunting`, `hunted`, `hunt` meet. Not Porter; enough for matching terms to file names.
pub fn stem(word: &str) -> String {
    let w = word.to_lowercase();
    let n = w.chars().count();
    let strip = |suffix: &str, min: usize| -> Option<String> {
        w.strip_suffix(suffix)
            .filter(|rest| rest.chars().count() >= min)
            .map(str::to_string)
    };
    if let Some(r) = strip("ies", 3) {
        return r + "y";
    }
    if let Some(r) = strip("sses", 2) {
        return r + "ss";
    }
    if let Some(r) = strip("ing", 3) {
        return undouble(r);
    }
    if let Some(r) = strip("ed", 3) {
        return undouble(r);
    }
    if let Some(r) = strip("es", 3) {
        if r.ends_with(['s', 'x', 'z']) || r.ends_with("ch") || r.ends_with("sh") {
            return r;
        }
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    w
}

fn undouble(mut r: String) -> String {
    let b = r.as_bytes();
    if b.len() >= 2
        && b[b.len() - 1] == b[b.len() - 2]
        && !matches!(b[b.len() - 1], b'l' | b's' | b'z')
    {
        r.pop();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_keep_quotes_and_abbreviations() {
        let p = "“Well!” thought Alice to herself, “after such a fall.” Mr. Hare ran. Did he? Yes!";
        let s = sentences(p);
        assert_eq!(
            s,
            vec![
                "“Well!” thought Alice to herself, “after such a fall.”",
                "Mr. Hare ran.",
                "Did he?",
                "Yes!"
            ]
        );
        assert_eq!(s.join(" "), p);
    }

    #[test]
    fn blocks_with_titles_and_morals() {
        let text = "The Hare\r\nA HARE ran. He slept.\r\n\r\nSlow but steady wins the race.\r\n\r\n\r\n\r\nThe Mouse\r\nA MOUSE ran.\r\n\r\n“A quote.”\r\n";
        let s = sections(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].title, "The Hare");
        assert_eq!(s[0].paragraphs, vec!["A HARE ran. He slept."]);
        assert_eq!(
            s[0].moral.as_deref(),
            Some("Slow but steady wins the race.")
        );
        assert_eq!(s[1].moral, None);
        assert_eq!(s[1].paragraphs.len(), 2);
        assert!(find(&s, "the  MOUSE").is_some());
    }

    #[test]
    fn chapters_with_names() {
        let text = "CHAPTER I.\nDown the Rabbit-Hole\nAlice ran.\n\nShe fell.\nCHAPTER II.\nThe Pool of Tears\nCurious.\n";
        let s = sections(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].subtitle.as_deref(), Some("Down the Rabbit-Hole"));
        assert_eq!(s[0].paragraphs, vec!["Alice ran.", "She fell."]);
        assert!(find(&s, "chapter i").is_some());
        assert!(find(&s, "the pool of tears").is_some());
    }

    #[test]
    fn stems_meet() {
        assert_eq!(stem("cats"), "cat");
        assert_eq!(stem("cat"), "cat");
        assert_eq!(stem("hunting"), stem("hunted"));
        assert_eq!(stem("stories"), "story");
        assert_eq!(stem("glass"), "glass");
        let words = content_words("The Hare, believing her assertion, saw the TORTOISE.");
        let stems: Vec<_> = words.iter().map(|w| w.stem.as_str()).collect();
        assert_eq!(
            stems,
            vec!["hare", "believ", "assertion", "saw", "tortoise"]
        );
        assert!(words[0].proper);
        assert_eq!(words[4].surface, "Tortoise");
    }
}
