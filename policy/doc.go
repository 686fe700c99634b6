// Package policy decides what an identity may do with an MCP server: ordered rules with CEL
// conditions over the identity, the request and the session, and SQL and shell classifiers
// built on real parsers. It never performs I/O on the data path: [Set.Decide] is pure and
// fails closed (an unevaluable deny condition denies; nothing unknown is allowed by default).
package policy
