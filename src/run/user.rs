//! Resolving `USER[:GROUP]` against the container's `/etc/passwd` and `/etc/group`, as runc
//! does: names are looked up, numbers are taken as they are, and a numeric user missing from
//! `/etc/passwd` runs with group 0 and home `/`.

/// The identity the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those of `/etc/group` that list the user by name.
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} not found in /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} not found in /etc/group")]
    UnknownGroup(String),
    #[error("invalid user specification {0:?}: expected USER[:GROUP]")]
    Invalid(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Resolves `spec` (`None` for root) against the contents of `/etc/passwd` and `/etc/group`;
/// either may be empty when the image lacks the file.
pub fn resolve(spec: Option<&str>, passwd: &str, group: &str) -> Result<User, UserError> {
    let spec = spec.unwrap_or("0");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(UserError::Invalid(spec.to_owned()));
    }

    let users: Vec<PasswdEntry> = passwd.lines().filter_map(parse_passwd).collect();
    let groups: Vec<GroupEntry> = group.lines().filter_map(parse_group).collect();
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|u| u.name == user_part)
                .ok_or_else(|| UserError::UnknownUser(user_part.to_owned()))?,
        ),
    };
    let uid = entry.map_or_else(|| user_part.parse().unwrap_or(0), |e| e.uid);
    let mut user = User {
        uid,
        gid: entry.map_or(0, |e| e.gid),
        groups: Vec::new(),
        home: entry.map_or("/", |e| e.home).to_owned(),
    };

    if let Some(group_part) = group_part {
        user.gid = match group_part.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|g| g.name == group_part)
                .map(|g| g.gid)
                .ok_or_else(|| UserError::UnknownGroup(group_part.to_owned()))?,
        };
    }
    if let Some(entry) = entry {
        user.groups = groups
            .iter()
            .filter(|g| g.members.contains(&entry.name) && g.gid != user.gid)
            .map(|g| g.gid)
            .collect();
    }
    Ok(user)
}

fn parse_passwd(line: &str) -> Option<PasswdEntry<'_>> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 7 || line.starts_with('#') {
        return None;
    }
    Some(PasswdEntry {
        name: fields[0],
        uid: fields[2].parse().ok()?,
        gid: fields[3].parse().ok()?,
        home: fields[5],
    })
}

fn parse_group(line: &str) -> Option<GroupEntry<'_>> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 4 || line.starts_with('#') {
        return None;
    }
    Some(GroupEntry {
        name: fields[0],
        gid: fields[2].parse().ok()?,
        members: fields[3].split(',').filter(|m| !m.is_empty()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/sbin/nologin\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\n";
    const GROUP: &str = "root:x:0:root\nwheel:x:10:root,app\naudio:x:29:app\napp:x:1000:\n";

    fn user(uid: u32, gid: u32, groups: &[u32], home: &str) -> User {
        User {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.to_owned(),
        }
    }

    #[test]
    fn user_resolution_table() {
        let cases: &[(Option<&str>, User)] = &[
            (None, user(0, 0, &[10], "/root")),
            (Some("root"), user(0, 0, &[10], "/root")),
            (Some("app"), user(1000, 1000, &[10, 29], "/home/app")),
            (Some("1000"), user(1000, 1000, &[10, 29], "/home/app")),
            (Some("app:audio"), user(1000, 29, &[10], "/home/app")),
            (Some("app:50"), user(1000, 50, &[10, 29], "/home/app")),
            (Some("4242"), user(4242, 0, &[], "/")),
            (Some("4242:4242"), user(4242, 4242, &[], "/")),
            (Some("daemon"), user(1, 1, &[], "/usr/sbin")),
        ];
        for (spec, expected) in cases {
            let resolved = resolve(*spec, PASSWD, GROUP).unwrap();
            assert_eq!(resolved, *expected, "spec {spec:?}");
        }
    }

    #[test]
    fn user_resolution_errors() {
        let cases: &[(&str, UserError)] = &[
            ("nobody", UserError::UnknownUser("nobody".into())),
            ("app:nogroup", UserError::UnknownGroup("nogroup".into())),
            (":1", UserError::Invalid(":1".into())),
            ("app:", UserError::Invalid("app:".into())),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                resolve(Some(spec), PASSWD, GROUP).unwrap_err(),
                *expected,
                "spec {spec}"
            );
        }
    }

    #[test]
    fn missing_files_still_allow_numeric_users() {
        assert_eq!(resolve(None, "", "").unwrap(), user(0, 0, &[], "/"));
        assert_eq!(resolve(Some("5:6"), "", "").unwrap(), user(5, 6, &[], "/"));
    }
}
