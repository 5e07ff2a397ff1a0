//! Provider names as small integers inside the dataflow. The per-provider arrangement and the
//! horizon's copy of the held samples hold one provider per sample; as a `String` each was an
//! allocation to clone, compare and free (on every merge of the arrangement), for a handful of
//! distinct names. Ids are local to
//! the process (assigned on first sight, never reused or sent anywhere); names come back
//! out at the pipeline's edge, in the daily values it emits.

use std::sync::{Arc, OnceLock, RwLock};

use foldhash::HashMap;

pub type ProviderId = u16;

#[derive(Default)]
struct Names {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, ProviderId>,
}

fn names() -> &'static RwLock<Names> {
    static NAMES: OnceLock<RwLock<Names>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// The id of `name`, assigned on first sight.
pub fn id(name: &str) -> ProviderId {
    // Each thread keeps the names it has seen: every sample is looked up on its way in, from
    // both workers, and the shared table's lock is one cache line they would both write to.
    LOCAL.with(|local| {
        if let Some(id) = local.borrow().ids.get(name) {
            return *id;
        }
        let id = shared_id(name);
        let mut local = local.borrow_mut();
        let name: Arc<str> = Arc::from(name);
        local.ids.insert(name, id);
        id
    })
}

fn shared_id(name: &str) -> ProviderId {
    if let Some(id) = names().read().expect("provider names").ids.get(name) {
        return *id;
    }
    let mut w = names().write().expect("provider names");
    if let Some(id) = w.ids.get(name) {
        return *id;
    }
    // Provider names are a registry's keys and the few sources clients name: far fewer.
    let id = ProviderId::try_from(w.names.len()).expect("fewer than 65,536 provider names");
    let name: Arc<str> = Arc::from(name);
    w.names.push(name.clone());
    w.ids.insert(name, id);
    id
}

/// The name of an id this process assigned. The `Arc` is the calling thread's own copy, so
/// the threads that clone and drop names do not share a reference count.
pub fn name(id: ProviderId) -> Arc<str> {
    LOCAL.with(|local| {
        let at = usize::from(id);
        if let Some(Some(name)) = local.borrow().names.get(at) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(&*names().read().expect("provider names").names[at]);
        let mut local = local.borrow_mut();
        if local.names.len() <= at {
            local.names.resize(at + 1, None);
        }
        local.names[at] = Some(name.clone());
        name
    })
}

#[derive(Default)]
struct Local {
    ids: HashMap<Arc<str>, ProviderId>,
    names: Vec<Option<Arc<str>>>,
}

thread_local! {
    static LOCAL: std::cell::RefCell<Local> = std::cell::RefCell::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_names_round_trip() {
        let a = id("provider-a-for-the-interner-test");
        let b = id("provider-b-for-the-interner-test");
        assert_ne!(a, b);
        assert_eq!(id("provider-a-for-the-interner-test"), a);
        assert_eq!(&*name(b), "provider-b-for-the-interner-test");
    }
}
