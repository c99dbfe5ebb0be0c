//! Tests of Application Auto Scaling effects (see berth-api for end-to-end handler tests).
