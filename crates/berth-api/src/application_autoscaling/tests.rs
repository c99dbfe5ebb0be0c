//! In-process tests of Application Auto Scaling's handlers and effects.
