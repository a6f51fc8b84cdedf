//! Data-subject requests (GDPR Articles 15 and 17): [`export`] streams everything the hub
//! holds about a user as one JSON document; [`erase`] removes or irreversibly anonymises their
//! personal data while the results the institution must keep (scores, review decisions) stay
//! attached to the user's id, now a pseudonym.

pub mod erase;
pub mod export;
