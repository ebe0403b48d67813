// Package collab serves collaborative documents.
package collab
