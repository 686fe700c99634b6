// Package masking finds secrets and personal data in text and JSON and rewrites them.
//
// Invariants: only JSON string values change (a valid document stays valid, types are kept);
// masking masked output changes nothing; findings carry types and counts, never values; a
// [Stream] never emits a byte that masking the whole text at once would have masked.
package masking
