//! A fleet through its coordination store going away and agents killed while they
//! wait for the fleet.
