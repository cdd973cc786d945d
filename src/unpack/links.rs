//! Hardlinks to files that exist only in the layers below, as recorded while a layer is
//! unpacked. Pure bookkeeping: no file system access.
//!
//! overlayfs handles `link(2)` on a lower file by copying the file up into the upper layer
//! and linking the new name to the copy, so that both names are one inode in the merged
//! view. The unpacker does the same, in two steps: while streaming, it puts an empty
//! placeholder file at the target's path and links each new name to it; once the layers
//! below are known, [`super::resolve_lowers`] replaces the placeholder's content and
//! metadata with the lower file's. This module keeps track of which names still refer to
//! each placeholder as later entries replace or remove them.

use std::collections::HashMap;

use super::path::EntryPath;

/// One lower file copied up: its path, and the names in this layer that refer to the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerLink {
    pub target: EntryPath,
    /// The copy at `target` itself comes first while it lasts; the hardlinks follow.
    pub names: Vec<EntryPath>,
}

#[derive(Debug, Default)]
pub struct LowerLinks {
    links: Vec<LowerLink>,
    /// Index into `links` of every name still referring to a placeholder.
    by_name: HashMap<EntryPath, usize>,
}

impl LowerLinks {
    /// Records that `name` is a hardlink to the lower file `target`, copied up at `target`.
    pub fn add(&mut self, target: &EntryPath, name: &EntryPath) {
        let index = self.links.len();
        self.links.push(LowerLink {
            target: target.clone(),
            names: vec![target.clone(), name.clone()],
        });
        self.by_name.insert(target.clone(), index);
        self.by_name.insert(name.clone(), index);
    }

    /// Records that `name` was linked to `existing`, if `existing` refers to a placeholder.
    pub fn add_name_if_linked(&mut self, existing: &EntryPath, name: &EntryPath) {
        if let Some(&index) = self.by_name.get(existing) {
            self.links[index].names.push(name.clone());
            self.by_name.insert(name.clone(), index);
        }
    }

    /// Forgets `path` and every name below it: they were removed or replaced.
    pub fn forget(&mut self, path: &EntryPath) {
        if self.by_name.is_empty() {
            return;
        }
        self.by_name.retain(|name, _| !name.starts_with(path));
        for link in &mut self.links {
            link.names.retain(|name| !name.starts_with(path));
        }
    }

    /// Forgets the name `path` alone: it was a file, with nothing below it.
    pub fn forget_exact(&mut self, path: &EntryPath) {
        if let Some(index) = self.by_name.remove(path) {
            self.links[index].names.retain(|name| name != path);
        }
    }

    /// Finds a copied-up target still in place at `path` or below it.
    pub fn target_at_or_below(&self, path: &EntryPath) -> Option<&EntryPath> {
        self.links
            .iter()
            .filter(|link| link.names.first() == Some(&link.target))
            .map(|link| &link.target)
            .find(|target| target.starts_with(path))
    }

    /// Returns the links that some name still refers to.
    pub fn into_links(self) -> Vec<LowerLink> {
        self.links
            .into_iter()
            .filter(|link| !link.names.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> EntryPath {
        EntryPath::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn lower_links_follow_chained_names() {
        let mut links = LowerLinks::default();
        links.add(&path("bin/a"), &path("bin/b"));
        links.add_name_if_linked(&path("bin/b"), &path("c"));
        links.add_name_if_linked(&path("unrelated"), &path("d"));
        let all = links.into_links();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].names, vec![path("bin/a"), path("bin/b"), path("c")]);
    }

    #[test]
    fn lower_links_forget_removed_names() {
        let mut links = LowerLinks::default();
        links.add(&path("bin/a"), &path("usr/b"));
        links.forget(&path("bin"));
        assert_eq!(links.target_at_or_below(&path("bin")), None);
        let all = links.into_links();
        assert_eq!(all[0].names, vec![path("usr/b")]);
    }

    #[test]
    fn lower_links_drop_links_without_names() {
        let mut links = LowerLinks::default();
        links.add(&path("a"), &path("b"));
        links.forget(&path("a"));
        links.forget(&path("b"));
        assert!(links.into_links().is_empty());
    }

    #[test]
    fn lower_links_find_targets_below() {
        let mut links = LowerLinks::default();
        links.add(&path("etc/x/a"), &path("b"));
        assert_eq!(
            links.target_at_or_below(&path("etc")),
            Some(&path("etc/x/a"))
        );
        assert_eq!(
            links.target_at_or_below(&path("etc/x/a")),
            Some(&path("etc/x/a"))
        );
        assert_eq!(links.target_at_or_below(&path("usr")), None);
        assert_eq!(links.target_at_or_below(&path("")), Some(&path("etc/x/a")));
    }
}
