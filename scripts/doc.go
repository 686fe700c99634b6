// Package scripts holds the tests of the repository's shell scripts (no Go code ships here).
package scripts
