//! Mirror modes that need something besides the classifier: the ERSPAN
//! netdev that receives a switch's mirrored copies (SPEC section 5).

pub mod erspan;
