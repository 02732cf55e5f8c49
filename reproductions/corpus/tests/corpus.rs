//! The corpus layer on the fixture (always) and on the installed Debian packages (when they are
//! installed; `CLAIMBENCH_REQUIRE_CORPUS=1`, which `.ci/run` sets, makes their absence a failure).

use claimbench_corpus::{CorpusConfig, CorpusError, Split, fixture_root, load_uncached};
use claimbench_paper::DataEnv;

fn fixture_env() -> DataEnv {
    DataEnv {
        corpus_root: Some(fixture_root()),
    }
}

fn cfg(domains: &[&str], vocab: usize) -> CorpusConfig {
    CorpusConfig {
        domains: domains.iter().map(|d| d.to_string()).collect(),
        max_bytes_per_domain: 1 << 20,
        vocab_size: vocab,
    }
}

#[test]
fn the_fixture_loads_splits_and_tokenises_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&["en-fortunes", "de-fortunes", "en-man"], 400);
    let a = load_uncached(&c, &fixture_env(), Some(dir.path())).unwrap();
    assert!(!a.bpe.cached);
    let b = load_uncached(&c, &fixture_env(), Some(dir.path())).unwrap();
    assert!(b.bpe.cached, "the second load reads the cached tokenizer");
    let fresh = load_uncached(&c, &fixture_env(), None).unwrap();
    assert_eq!(a.bpe.sha256, fresh.bpe.sha256, "training is deterministic");
    for (x, y) in a.domains.iter().zip(&b.domains) {
        assert_eq!(x.card, y.card);
        assert_eq!(x.splits, y.splits);
        let card = &x.card;
        assert_eq!(card.package, "corpus-root");
        assert!(card.vocab_size <= 400 && card.vocab_size > 258);
        assert_eq!(card.documents, card.split_documents.iter().sum::<u64>());
        assert_eq!(card.tokens, card.split_tokens.iter().sum::<u64>());
        assert!(card.split_documents[0] > 8 * card.split_documents[1].max(1));
        for s in Split::ALL {
            let t = x.tokens(s);
            assert!(!t.is_empty());
            assert!(t.iter().all(|&id| (id as u64) < card.vocab_size));
            assert_eq!(*t.last().unwrap(), a.bpe.doc_id);
        }
    }
    // The man pages were stripped of roff: no macro or font escape is left.
    let man = a.domain("en-man").unwrap();
    let text = a.bpe.decode(&man.tokens(Split::Train)[..400]).unwrap();
    assert!(!text.contains(".TH") && !text.contains("\\f"), "{text}");
    assert!(text.contains("SYNOPSIS"), "{text}");
    // A round trip through the byte-level BPE gives the text back.
    let de = a.domain("de-fortunes").unwrap();
    let first: Vec<u32> = de
        .tokens(Split::Train)
        .iter()
        .copied()
        .take_while(|&t| t != a.bpe.doc_id)
        .collect();
    let text = a.bpe.decode(&first).unwrap();
    assert!(text.split_whitespace().count() >= 4, "{text}");
}

#[test]
fn the_budget_keeps_documents_in_hash_order_and_errors_name_an_empty_split() {
    let with_budget = |bytes: u64| CorpusConfig {
        max_bytes_per_domain: bytes,
        ..cfg(&["en-fortunes"], 300)
    };
    let all = load_uncached(&with_budget(1 << 20), &fixture_env(), None).unwrap();
    let half = load_uncached(&with_budget(6000), &fixture_env(), None).unwrap();
    let (a, h) = (&all.domains[0].card, &half.domains[0].card);
    assert_eq!(a.over_budget, 0, "the whole fixture fits 1 MiB");
    assert!(
        h.bytes <= 6000 && h.over_budget > 0 && h.documents > 0,
        "{h:?}"
    );
    assert_eq!(h.documents + h.over_budget, a.documents);
    // Every split still has text, and a document keeps its split under any budget: the half
    // budget's training documents are a subset of the full one's (first fit in hash order).
    assert!(h.split_documents.iter().all(|&n| n > 0), "{h:?}");
    assert!((0..3).all(|i| h.split_documents[i] <= a.split_documents[i]));
    // A budget of one short document leaves validation and test empty: an error naming the
    // split, never a silent gap.
    let e = load_uncached(&with_budget(60), &fixture_env(), None).unwrap_err();
    assert!(
        matches!(
            e,
            CorpusError::Empty {
                domain: "en-fortunes",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn bad_settings_and_sources_are_input_errors_naming_the_problem() {
    let e = load_uncached(&cfg(&["klingon"], 300), &fixture_env(), None).unwrap_err();
    assert!(
        e.is_input() && e.to_string().contains("known: en-fortunes"),
        "{e}"
    );
    let e = load_uncached(&cfg(&["it-fortunes"], 300), &fixture_env(), None).unwrap_err();
    assert!(
        e.is_input() && e.to_string().contains("no folder it-fortunes/"),
        "{e}"
    );
    let e = load_uncached(
        &cfg(&["en-fortunes", "en-fortunes"], 300),
        &fixture_env(),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    let e = load_uncached(&cfg(&["en-fortunes"], 100), &fixture_env(), None).unwrap_err();
    assert!(e.to_string().contains("vocab_size 100"), "{e}");
}

/// The installed packages, when present: files are found, symlinks and indexes skipped.
#[test]
fn debian_packages_when_installed() {
    let required = std::env::var("CLAIMBENCH_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    let c = CorpusConfig {
        domains: [
            "en-fortunes",
            "de-fortunes",
            "es-fortunes",
            "it-fortunes",
            "en-man",
            "de-man",
            "fr-man",
            "rust-src",
        ]
        .map(String::from)
        .to_vec(),
        max_bytes_per_domain: 2_000_000,
        vocab_size: 1024,
    };
    let corpus = match load_uncached(&c, &DataEnv::default(), None) {
        Ok(c) => c,
        Err(e @ CorpusError::MissingPackage { .. }) if !required => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    for d in &corpus.domains {
        let card = &d.card;
        assert_ne!(card.package, "corpus-root");
        assert!(!card.version.is_empty());
        assert!(card.files > 0 && card.documents > 20, "{card:?}");
        assert!(card.bytes <= 2_000_000, "{card:?}");
    }
    let en = corpus.domain("en-fortunes").unwrap();
    let it = corpus.domain("it-fortunes").unwrap();
    assert_ne!(
        en.card.sha256, it.card.sha256,
        "Italian links are not read as English"
    );
    for d in &corpus.domains {
        eprintln!("{:?}", d.card);
    }
    eprintln!("{:?}", corpus.times);
}
