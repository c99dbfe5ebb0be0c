//! A region over a real store in a temporary directory, with a hand-moved clock and
//! sequential ids, for the VPC model's tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_store::{Embedded, EmbeddedOptions, Store};

use crate::clock::ManualClock;
use crate::ids::SequentialIds;
use crate::{Control, Region};

pub struct TestRegion {
    pub control: Arc<Control>,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl TestRegion {
    pub fn new() -> TestRegion {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> =
            Arc::new(Embedded::open(&dir.path().join("s.redb"), EmbeddedOptions::default()).expect("a store"));
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
        let config = crate::Config::testing("test");
        let control = Control::new(config, store, clock.clone(), Arc::new(SequentialIds::default()));
        TestRegion { control, clock, _dir: dir }
    }

    pub fn region(&self) -> Region<'_> {
        self.control.region("us-east-1")
    }
}
