package dynamo

// SetChunkBytes makes snapshot chunks n bytes, so that tests see several
// chunks without writing a policy of a megabyte; it returns the undo.
func SetChunkBytes(n int) func() {
	old := chunkBytes
	chunkBytes = n
	return func() { chunkBytes = old }
}
