//! criterion: loading the continual reproduction's `small` corpus (English fortunes, English
//! manual pages, German fortunes; 2 MB of text each) from the installed Debian packages: list
//! the files, read and strip them, drop duplicates, split by hash, then either train the 512-token
//! byte-level BPE (`cold`, an empty tokenizer cache) or read it from the cache (`warm`, what every
//! run after the first does), and encode every split. Checked first: three domains, every split
//! non-empty, every id inside the vocabulary. Without the packages (`apt-get install fortunes
//! fortunes-de manpages`) it prints why and times nothing.

use claimbench_corpus::{CorpusConfig, Split, load_uncached};
use claimbench_paper::DataEnv;
use criterion::{Criterion, criterion_group, criterion_main};

fn cfg() -> CorpusConfig {
    CorpusConfig {
        domains: vec!["en-fortunes".into(), "en-man".into(), "de-fortunes".into()],
        max_bytes_per_domain: 2_000_000,
        vocab_size: 512,
    }
}

fn bench(c: &mut Criterion) {
    let env = DataEnv::default();
    let cache = tempfile::tempdir().expect("a temporary folder");
    let first = match load_uncached(&cfg(), &env, Some(cache.path())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corpus_load: not timed: {e}");
            return;
        }
    };
    assert_eq!(first.domains.len(), 3);
    for d in &first.domains {
        for s in Split::ALL {
            assert!(!d.tokens(s).is_empty(), "{} {}", d.domain.id, s.name());
            assert!(
                d.tokens(s)
                    .iter()
                    .all(|&t| (t as usize) < first.bpe.vocab_size)
            );
        }
    }
    eprintln!("corpus_load: first load {:?}", first.times);
    let mut g = c.benchmark_group("corpus-load");
    g.sample_size(10);
    g.bench_function("small: cold (train the BPE)", |b| {
        b.iter(|| load_uncached(&cfg(), &env, None).expect("loads"))
    });
    g.bench_function("small: warm (cached BPE)", |b| {
        b.iter(|| load_uncached(&cfg(), &env, Some(cache.path())).expect("loads"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
