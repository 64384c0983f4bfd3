//! The export stream of `kv_api::export` (`Store::export` / `Store::import`).

use kv_api::export::{ExportCommit, ExportHeader, StreamReader, StreamWriter};
use kv_api::{Error, Result, Store};
use kv_backends::MemoryStorage;
use kv_bitcask::Bitcask;

use crate::util::{block_on, both, fix_frames};

fn read_all(buf: &[u8]) -> Result<(ExportHeader, Vec<ExportCommit>)> {
    let mut r = StreamReader::new(buf)?;
    let mut commits = Vec::new();
    while let Some(c) = r.next_commit()? {
        commits.push(c);
    }
    assert_eq!(
        r.bytes(),
        buf.len() as u64,
        "a whole stream is read to its end"
    );
    Ok((r.header().clone(), commits))
}

/// `StreamReader` over the input (and with its frames' CRCs fixed). A stream that decodes
/// whole re-encodes with `StreamWriter` to a stream that decodes the same, and imports into a
/// new store (or is refused with a typed error: a key too large for the default options),
/// which then ends at the stream's version.
pub fn export_stream(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        let Ok((header, commits)) = read_all(buf) else {
            return;
        };
        let mut again = Vec::new();
        let mut w = StreamWriter::new(&mut again, &header).expect("the header re-encodes");
        for c in &commits {
            w.commit(c).expect("a decoded commit re-encodes");
        }
        w.finish().expect("the trailer re-encodes");
        let (h2, c2) = read_all(&again).expect("a re-encoded stream decodes");
        assert_eq!((&h2, &c2), (&header, &commits));
        let times =
            |cs: &[ExportCommit]| cs.iter().map(|c| c.version.time_ms()).collect::<Vec<_>>();
        assert_eq!(times(&c2), times(&commits));

        block_on(async {
            let store = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new())
                .await
                .expect("a new memory store opens");
            match store.import(buf, &|_| {}).await {
                Ok(summary) => {
                    assert_eq!(summary.commits, commits.len() as u64);
                    assert_eq!(store.version().expect("open"), header.version);
                }
                Err(Error::TooLarge { .. } | Error::InvalidArgument(_)) => {}
                Err(e) => panic!("a whole stream failed to import: {e:?}"),
            }
        });
    });
}
