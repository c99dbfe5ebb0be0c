//! nftables inside this process: Debian's `libnftables` (the library the `nft` program is
//! made of: the same language, the same all-or-nothing batches, the same messages), loaded
//! when first needed. A batch through it costs no process: the `nft` program's start alone
//! (its loader, the parse of its configuration) is a few milliseconds of cpu per run here,
//! and every task start and stop runs one.
//!
//! A context speaks to the kernel in the network namespace of the thread that made it, so
//! each namespace gets a thread of its own that entered it and keeps its context; batches
//! reach it over a channel. A namespace's file that now names another namespace (removed and
//! made again) gets a new thread. When the library cannot be loaded, callers run `nft`.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use tokio::sync::oneshot;

use super::NetError;

/// The library's soname in Debian's `libnftables1` (a dependency of `nftables`).
const LIBRARY: &CStr = c"libnftables.so.1";

/// The library's entry points used here (`nftables/libnftables.h`).
struct Api {
    ctx_new: unsafe extern "C" fn(u32) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    run_cmd_from_buffer: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
    output_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    error_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
}

impl Api {
    fn load() -> Result<Api, String> {
        // SAFETY: dlopen with a NUL-terminated name; the handle is kept for the process's life.
        let handle = unsafe { libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("{} cannot be loaded", LIBRARY.to_string_lossy()));
        }
        let symbol = |name: &CStr| -> Result<*mut c_void, String> {
            // SAFETY: dlsym on the handle just opened, with a NUL-terminated name.
            let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
            if address.is_null() {
                return Err(format!("{} has no {}", LIBRARY.to_string_lossy(), name.to_string_lossy()));
            }
            Ok(address)
        };
        /// A symbol's address as the function type `F` its header declares.
        ///
        /// SAFETY: `F` must be a function pointer type matching the symbol.
        unsafe fn function<F: Copy>(address: *mut c_void) -> F {
            // SAFETY: function pointers and data pointers have one size on Linux; the caller
            // names the symbol's own signature.
            unsafe { std::mem::transmute_copy(&address) }
        }
        // SAFETY: each symbol is the library's function of that name, with the signature of
        // the field it fills (as `nftables/libnftables.h` declares it).
        unsafe {
            Ok(Api {
                ctx_new: function(symbol(c"nft_ctx_new")?),
                ctx_free: function(symbol(c"nft_ctx_free")?),
                buffer_output: function(symbol(c"nft_ctx_buffer_output")?),
                buffer_error: function(symbol(c"nft_ctx_buffer_error")?),
                run_cmd_from_buffer: function(symbol(c"nft_run_cmd_from_buffer")?),
                output_buffer: function(symbol(c"nft_ctx_get_output_buffer")?),
                error_buffer: function(symbol(c"nft_ctx_get_error_buffer")?),
            })
        }
    }
}

fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(Api::load).as_ref().map_err(Clone::clone)
}

type Request = (String, oneshot::Sender<Result<String, NetError>>);

/// A context in one network namespace, on its own thread.
pub struct Nft {
    requests: Mutex<mpsc::Sender<Request>>,
}

impl Nft {
    /// A context in the network namespace at `netns`; an error when the library cannot be
    /// loaded or the namespace entered.
    pub fn open(netns: &Path) -> Result<Nft, NetError> {
        let api = api().map_err(NetError::Firewall)?;
        let ns = std::fs::File::open(netns).map_err(|e| NetError::Firewall(format!("{}: {e}", netns.display())))?;
        let (requests, inbox) = mpsc::channel::<Request>();
        let (ready, started) = mpsc::sync_channel(1);
        let name = format!("berth-nft-{}", netns.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || {
                // SAFETY: setns on this thread alone (a thread of its own), with an open
                // namespace file; nft_ctx_new and the buffer calls take the context just made.
                let ctx = unsafe {
                    if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                        let _ = ready.send(Err(format!("entering the namespace: {}", std::io::Error::last_os_error())));
                        return;
                    }
                    let ctx = (api.ctx_new)(0);
                    if ctx.is_null() || (api.buffer_output)(ctx) != 0 || (api.buffer_error)(ctx) != 0 {
                        let _ = ready.send(Err("nft_ctx_new failed".to_string()));
                        return;
                    }
                    ctx
                };
                drop(ns);
                let _ = ready.send(Ok(()));
                for (batch, reply) in inbox {
                    let _ = reply.send(run_here(api, ctx, &batch));
                }
                // The namespace's file was made again (or the process is ending).
                // SAFETY: the context is this thread's, and no call uses it any more.
                unsafe { (api.ctx_free)(ctx) };
            })
            .map_err(|e| NetError::Firewall(format!("starting the nftables thread: {e}")))?;
        match started.recv() {
            Ok(Ok(())) => Ok(Nft { requests: Mutex::new(requests) }),
            Ok(Err(why)) => Err(NetError::Firewall(why)),
            Err(_) => Err(NetError::Firewall("the nftables thread ended".into())),
        }
    }

    /// Runs `batch` (the `nft -f` language) as one transaction; what it printed.
    pub async fn run(&self, batch: String) -> Result<String, NetError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.lock().unwrap_or_else(|e| e.into_inner()).send((batch, reply));
        if sent.is_err() {
            return Err(NetError::Firewall("the nftables thread ended".into()));
        }
        answer.await.unwrap_or_else(|_| Err(NetError::Firewall("the nftables thread ended".into())))
    }
}

/// One batch on the context's own thread.
fn run_here(api: &Api, ctx: *mut c_void, batch: &str) -> Result<String, NetError> {
    let text = CString::new(batch).map_err(|_| NetError::Firewall("nft: a NUL byte in a batch".into()))?;
    // SAFETY: the context lives on this thread for the process's life; the returned buffers
    // are the context's, valid until its next call, and copied out at once.
    unsafe {
        let rc = (api.run_cmd_from_buffer)(ctx, text.as_ptr());
        let read = |p: *const c_char| {
            if p.is_null() { String::new() } else { CStr::from_ptr(p).to_string_lossy().into_owned() }
        };
        let output = read((api.output_buffer)(ctx));
        let error = read((api.error_buffer)(ctx));
        if rc == 0 { Ok(output) } else { Err(NetError::Firewall(format!("nft: {}", error.trim()))) }
    }
}

/// The context for the namespace at `netns`, made when first asked for; `None` when the
/// library cannot serve it (the caller runs `nft`; why is logged once per namespace).
pub fn for_namespace(netns: &Path) -> Option<Arc<Nft>> {
    /// A namespace file's inode and its context (none: the library cannot serve it).
    type Opened = (u64, Option<Arc<Nft>>);
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Opened>>> = OnceLock::new();
    // The namespace file's inode names the namespace: a path made again names another one.
    let inode = std::fs::metadata(netns).ok()?.ino();
    let mut open = OPEN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((known, nft)) = open.get(netns)
        && *known == inode
    {
        return nft.clone();
    }
    let nft = match Nft::open(netns) {
        Ok(nft) => Some(Arc::new(nft)),
        Err(e) => {
            tracing::info!(netns = %netns.display(), error = %e, "running the nft program for nftables rules");
            None
        }
    };
    open.insert(netns.to_path_buf(), (inode, nft.clone()));
    nft
}
