//! Mirror modes that need something besides the classifier: the ERSPAN
//! netdev that receives a switch's mirrored copies and the SONiC mirror
//! session that sends them (SPEC section 5).

pub mod erspan;
pub mod sonic;
