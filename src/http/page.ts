/**
 * The status page: one static HTML document, its stylesheet (`app.css`) and its script (`app.js`),
 * no build chain. Nothing is inline, so the server can send a strict Content-Security-Policy
 * (`script-src 'self'`, `style-src 'self'`). It polls `/api/status` every 2 s and draws, per
 * target: the state (running, retrying with why and the attempt, parked with why and when it is
 * tried next), backlog, in flight, done and failed counts, the throughput (files/s, MiB/s over
 * the last 5 minutes) and when the backlog should be empty at that pace, a chart of files archived
 * per minute over the last hour with its axes, and a "Retry failed" button (POST
 * /api/targets/:id/retry-failed; disabled with nothing failed) and, on a parked target, a "Try
 * now" button (POST /api/targets/:id/retry); then a search box over the
 * archived paths (`/api/search`: per target the state, remote path, size, hash, when verified and
 * why it failed), the files stored under another name (a name collision: wanted and stored
 * path), the recent failures with their reasons and the last files archived; on a
 * journal shared by several daemons, the daemons (node, state, last heartbeat, uploads held,
 * roots). Sizes are
 * binary (KiB, MiB). When the server wants a token, the page takes it from `#token=…` in its
 * address (and removes it from there) or asks for it in its own form, never `prompt()`, and keeps
 * it in localStorage. While a PostgreSQL journal does not answer (`journal.reachable: false`),
 * a banner at the top says since when and why, and that deliveries wait and resume.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Stagecoach</title>
<link rel="stylesheet" href="app.css"></head>
<body>
<header><h1>Stagecoach</h1><span id="health">…</span><span id="error"></span></header>
<main>
<div id="journal" class="banner" role="alert" hidden></div>
<form id="token-form" class="panel" hidden>
<label for="token-input">This page needs the token: <code>http.token</code> in the config (stagecoach.yaml).</label>
<input type="password" id="token-input" autocomplete="current-password" required>
<button type="submit">Open</button> <span id="token-note"></span>
</form>
<div class="targets" id="targets"></div>
<div id="fleet"></div>
<section id="connect-panel" class="panel" hidden>
<h3 id="connect-title"></h3>
<div id="connect-lines"></div>
<form id="connect-form" hidden><label for="connect-input" id="connect-question"></label><br>
<input type="text" id="connect-input" autocomplete="off" spellcheck="false"> <button type="submit">Send</button></form>
<p id="connect-message"></p>
<button type="button" id="connect-close">Close</button>
</section>
<h3>Where is my file?</h3>
<form id="search-form" class="panel"><input type="search" id="search-input" placeholder="a file name or part of its path" aria-label="Search archived files"> <button type="submit">Search</button></form>
<div id="search-results"></div>
<h3>Stored under another name</h3><table><thead><tr><th>Target</th><th>File</th><th>Wanted</th><th>Stored as</th></tr></thead><tbody id="renamed"></tbody></table>
<h3>Recent failures</h3><table><thead><tr><th>Target</th><th>File</th><th>Reason</th><th>When</th></tr></thead><tbody id="failures"></tbody></table>
<h3>Last files archived</h3><table><thead><tr><th>Target</th><th>File</th><th>Size</th><th>When</th></tr></thead><tbody id="files"></tbody></table>
<p id="freed"></p>
<h3>Scrub: copies checked again</h3><table><thead><tr><th>Target</th><th>Checked</th><th>OK</th><th>Missing</th><th>Altered</th><th>Errors</th><th>Last round</th></tr></thead><tbody id="scrub"></tbody></table>
<h3>Scrub findings (archived again)</h3><table><thead><tr><th>Target</th><th>File</th><th>Problem</th><th>When</th></tr></thead><tbody id="findings"></tbody></table>
</main>
<script src="app.js"></script>
</body></html>
`;

/** The page's stylesheet, served as `/app.css`. */
export const STATUS_STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#23395d;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:18px;margin:0}#health{font-weight:600}
main{padding:16px;max-width:1100px;margin:auto}
.targets{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.card,.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.panel{margin-bottom:12px}
.card h2{font-size:16px;margin:0 0 6px;display:flex;justify-content:space-between}
.state{font-size:12px;padding:1px 8px;border-radius:10px;background:#d9f2dd;color:#1c6b2a}
.state.down{background:#f9d6d5;color:#8b1c17}.state.retrying{background:#fcebc5;color:#7a4b00}
.nums{display:flex;gap:12px;margin:4px 0}.nums b{display:block;font-size:18px}
.reason{color:#8b1c17;font-size:12px}.rate{font-size:12px;color:#444;margin:2px 0}
svg{width:100%;height:100px;background:#fafbfc;border:1px solid #eee}
svg text{font-size:10px;fill:#666}
button{margin-top:6px}
#search-input{width:60%;min-width:200px}
#connect-panel{border-color:#4a78c2}#connect-lines p{margin:2px 0;word-break:break-all}#connect-input{width:80%}
#connect-message.failed{color:#8b1c17}#connect-message.done{color:#1c6b2a}
.result{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 10px;margin-bottom:8px}
.result h4{margin:0 0 4px;font-size:14px;word-break:break-all}
table{border-collapse:collapse;width:100%;background:#fff;margin-top:6px}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;font-size:13px;word-break:break-all}
#error,#token-note{color:#8b1c17}
.banner{background:#f9d6d5;color:#8b1c17;border:1px solid #e3a9a6;border-radius:6px;padding:8px 12px;margin-bottom:12px;font-weight:600}
`;

/** The page's script, served as `/app.js`: no inline handlers, so CSP `script-src 'self'` holds. */
export const STATUS_SCRIPT = `(function(){
  var KEY='stagecoach-token';
  var m=/token=([^&]+)/.exec(location.hash);
  if(m){localStorage.setItem(KEY,decodeURIComponent(m[1]));history.replaceState(null,'',location.pathname);}
  function headers(){var t=localStorage.getItem(KEY);return t?{Authorization:'Bearer '+t}:{};}
  function $(id){return document.getElementById(id);}
  function el(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs||{})e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=String(text);return e;}
  function when(ms){return new Date(ms).toLocaleTimeString();}
  function size(n){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(n>=1024&&i<u.length-1){n/=1024;i++;}return (i?n.toFixed(1):n)+' '+u[i];}
  function num(n){return n>=10?n.toFixed(0):n>=1?n.toFixed(1):n.toFixed(2);}
  function duration(s){if(s<90)return Math.round(s)+' s';if(s<5400)return Math.round(s/60)+' min';if(s<172800)return (s/3600).toFixed(1)+' h';return Math.round(s/86400)+' days';}
  var tokenShown=false;
  function askToken(note){
    var f=$('token-form');$('token-note').textContent=note||'';
    if(!tokenShown){f.hidden=false;tokenShown=true;$('token-input').focus();}
  }
  $('token-form').addEventListener('submit',function(e){
    e.preventDefault();var v=$('token-input').value.trim();if(!v)return;
    localStorage.setItem(KEY,v);$('token-input').value='';$('token-form').hidden=true;tokenShown=false;poll(true);
  });
  function svgEl(tag,attrs,text){var e=document.createElementNS('http://www.w3.org/2000/svg',tag);for(var k in attrs)e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=text;return e;}
  // Files archived per minute over the last hour: y axis in files/min, x axis in minutes ago.
  function chart(samples){
    var W=600,H=100,L=44,R=6,T=8,B=18,pw=W-L-R,ph=H-T-B;
    var svg=svgEl('svg',{viewBox:'0 0 '+W+' '+H,role:'img','aria-label':'files archived per minute, last hour'});
    var max=1;samples.forEach(function(s){if(s.files>max)max=s.files;});
    svg.appendChild(svgEl('line',{x1:L,y1:T,x2:L,y2:T+ph,stroke:'#999'}));
    svg.appendChild(svgEl('line',{x1:L,y1:T+ph,x2:L+pw,y2:T+ph,stroke:'#999'}));
    svg.appendChild(svgEl('text',{x:L-4,y:T+8,'text-anchor':'end','data-axis':'y-max'},String(max)));
    svg.appendChild(svgEl('text',{x:L-4,y:T+ph,'text-anchor':'end'},'0'));
    svg.appendChild(svgEl('text',{x:2,y:T+ph/2+3,'data-axis':'y-unit'},'files/min'));
    var n=samples.length||60;
    [[0,'-'+n+' min'],[0.5,'-'+Math.round(n/2)+' min'],[1,'now']].forEach(function(p){
      svg.appendChild(svgEl('text',{x:L+p[0]*pw,y:H-4,'text-anchor':p[0]===0?'start':p[0]===1?'end':'middle','data-axis':'x'},p[1]));});
    var w=pw/n;
    samples.forEach(function(s,i){if(!s.files)return;var h=Math.max(1,s.files/max*ph);
      var r=svgEl('rect',{x:L+i*w,y:T+ph-h,width:Math.max(1,w-1),height:h,fill:'#4a78c2'});
      r.appendChild(svgEl('title',{},when(s.at)+': '+s.files+' files, '+size(s.bytes)));svg.appendChild(r);});
    return svg;
  }
  // Files/s and MiB/s over the last 5 minutes, and when the backlog is empty at that pace.
  function pace(t,at){
    var s=t.throughput,k=Math.min(5,s.length);if(!k)return null;
    var last=s.slice(-k),files=0,bytes=0;last.forEach(function(x){files+=x.files;bytes+=x.bytes;});
    var secs=Math.max(1,((k-1)*60000+Math.max(0,at-last[k-1].at))/1000);
    var fps=files/secs,backlog=t.counts.pending+t.counts.inFlight,eta;
    if(backlog===0)eta='backlog empty';
    else if(fps===0)eta=backlog+' waiting, none archived in the last '+k+' min';
    else eta='backlog empty in about '+duration(backlog/fps);
    return {text:num(fps)+' files/s · '+num(bytes/secs/1048576)+' MiB/s',eta:eta};
  }
  function retry(id,btn){
    btn.disabled=true;
    fetch('api/targets/'+encodeURIComponent(id)+'/retry-failed',{method:'POST',headers:headers()})
      .then(function(r){return r.json();}).then(function(j){btn.textContent='Requeued '+(j.requeued||0);})
      .catch(function(e){btn.textContent='Error: '+e.message;});
  }
  function tryNow(id,btn){
    btn.disabled=true;
    fetch('api/targets/'+encodeURIComponent(id)+'/retry',{method:'POST',headers:headers()})
      .then(function(r){return r.json();}).then(function(j){btn.textContent=j.retried?'Trying…':'Not parked';})
      .catch(function(e){btn.textContent='Error: '+e.message;});
  }
  function render(s){
    $('health').textContent=s.health.ok?'healthy':'unhealthy: '+s.health.reasons.map(function(r){return r.reason;}).join('; ');
    var jb=$('journal'),j=s.journal;
    if(j&&j.reachable===false){jb.textContent='The journal (PostgreSQL) is unreachable since '+when(j.since)+(j.error?': '+j.error:'')+'; deliveries wait and resume when it answers.';jb.hidden=false;}
    else{jb.textContent='';jb.hidden=true;}
    var box=$('targets');box.textContent='';
    s.targets.forEach(function(t){
      var c=el('div',{'class':'card','data-target':t.id});var h2=el('h2',null,t.id+' ('+t.type+')');
      var parked=t.health.status==='down',retrying=!parked&&!!t.health.reason&&/^retrying/.test(t.health.reason);
      var st=el('span',{'class':'state'+(parked?' down':retrying?' retrying':''),'data-field':'state'},parked?'parked':retrying?'retrying':t.state);h2.appendChild(st);c.appendChild(h2);
      var nums=el('div',{'class':'nums'});
      [['backlog',t.counts.pending],['in flight',t.counts.inFlight],['done',t.counts.done],['failed',t.counts.failed]].forEach(function(p){
        var d=el('div',{'data-field':p[0]});d.appendChild(el('b',null,p[1]));d.appendChild(document.createTextNode(p[0]));nums.appendChild(d);});
      c.appendChild(nums);
      var p=pace(t,s.at);
      if(p){c.appendChild(el('div',{'class':'rate','data-field':'rate'},p.text));c.appendChild(el('div',{'class':'rate','data-field':'eta'},p.eta));}
      if(t.health.reason)c.appendChild(el('div',{'class':'reason','data-field':'reason'},t.health.reason+(parked&&t.health.retryAt?' · tried again at '+when(t.health.retryAt):'')));
      c.appendChild(chart(t.throughput));
      var b=el('button',{'data-action':'retry-failed'},'Retry failed');
      if(t.counts.failed===0){b.disabled=true;b.title='nothing failed';}
      b.addEventListener('click',function(){retry(t.id,b);});c.appendChild(b);
      if(t.signIn&&parked){var cb=el('button',{'data-action':'connect'},'Connect');cb.addEventListener('click',function(){connect(t.id);});c.appendChild(document.createTextNode(' '));c.appendChild(cb);}
      if(parked){var n=el('button',{'data-action':'try-now'},'Try now');n.addEventListener('click',function(){tryNow(t.id,n);});c.appendChild(document.createTextNode(' '));c.appendChild(n);}
      box.appendChild(c);});
    var rn=$('renamed');rn.textContent='';
    (s.renamed||[]).forEach(function(d){var tr=el('tr');[d.target,d.root+'/'+d.relPath,d.wanted,d.remotePath].forEach(function(v){tr.appendChild(el('td',null,v));});rn.appendChild(tr);});
    var fl=$('fleet');fl.textContent='';
    if(s.nodes){fl.appendChild(el('h3',null,'Daemons on this journal (this one: '+s.node+')'));var ft=el('table');var fh=el('tr');
      ['Node','State','Last heartbeat','In flight','Reads','Watches'].forEach(function(v){fh.appendChild(el('th',null,v));});ft.appendChild(fh);
      s.nodes.forEach(function(n){var tr=el('tr',{'data-node':n.name});[n.name,n.alive?'up':'silent',when(n.lastSeen),n.leases,n.roots.join(', '),n.watches.join(', ')].forEach(function(v){tr.appendChild(el('td',null,v));});ft.appendChild(tr);});
      fl.appendChild(ft);}
    var f=$('failures');f.textContent='';
    s.failures.forEach(function(d){var tr=el('tr');[d.target,d.relPath,d.lastError,when(d.updatedAt)].forEach(function(v){tr.appendChild(el('td',null,v));});f.appendChild(tr);});
    var l=$('files');l.textContent='';
    s.lastFiles.forEach(function(d){var tr=el('tr');[d.target,d.relPath,size(d.size),when(d.updatedAt)].forEach(function(v){tr.appendChild(el('td',null,v));});l.appendChild(tr);});
    document.getElementById('freed').textContent=s.freedBytes?'Space freed by afterArchive: '+size(s.freedBytes):'';
    var v=s.verify||{targets:[],findings:[]};
    var sc=document.getElementById('scrub');sc.textContent='';
    v.targets.forEach(function(t){var tr=el('tr');[t.target,String(t.checked),String(t.ok),String(t.missing),String(t.altered),String(t.errors),t.lastRoundAt?when(t.lastRoundAt):''].forEach(function(x){tr.appendChild(el('td',null,x));});sc.appendChild(tr);});
    var fi=document.getElementById('findings');fi.textContent='';
    v.findings.forEach(function(d){var tr=el('tr');[d.target,d.root+'/'+d.relPath,d.problem+': '+d.detail,when(d.at)].forEach(function(x){tr.appendChild(el('td',null,x));});fi.appendChild(tr);});
  }
  function unauthorized(r){
    if(r.status!==401)return false;
    askToken(localStorage.getItem(KEY)?'that token was refused':'');
    $('error').textContent='token needed';return true;
  }
  $('search-form').addEventListener('submit',function(e){
    e.preventDefault();var q=$('search-input').value.trim(),out=$('search-results');
    if(!q){out.textContent='';return;}
    fetch('api/search?q='+encodeURIComponent(q),{headers:headers()}).then(function(r){
      if(unauthorized(r))throw new Error('token needed');return r.json();}).then(function(b){
      out.textContent='';
      if(!b.files.length){out.appendChild(el('p',{'data-field':'no-match'},'No archived file matches “'+b.query+'”.'));return;}
      b.files.forEach(function(f){
        var d=el('div',{'class':'result','data-file':f.relPath});d.appendChild(el('h4',null,f.root+'/'+f.relPath+' ('+size(f.size)+')'));
        var tb=el('table');var head=el('tr');['Target','State','Remote path','Size','Hash','Verified','Reason'].forEach(function(h){head.appendChild(el('th',null,h));});tb.appendChild(head);
        f.deliveries.forEach(function(x){var tr=el('tr',{'data-target':x.target,'data-status':x.status});
          [x.target,x.status.replace('_',' '),x.remotePath,size(f.size),x.hash||'',x.verifiedAt?new Date(x.verifiedAt).toLocaleString():'',x.reason||''].forEach(function(v){tr.appendChild(el('td',null,v));});tb.appendChild(tr);});
        d.appendChild(tb);out.appendChild(d);});
    }).catch(function(e){out.textContent=e.message;});
  });
  // Sign-in from the page: the lines "stagecoach auth" prints, addresses as links, its question as a form.
  var signing=null,signTimer=null;
  function line(text){
    var p=el('p'),parts=text.split(/(https?:[^\\s]+)/);
    parts.forEach(function(x,i){if(i%2){var a=el('a',{href:x,target:'_blank',rel:'noopener noreferrer'},x);p.appendChild(a);}else if(x)p.appendChild(document.createTextNode(x));});
    return p;
  }
  function showSign(id,st){
    if(signing!==id)return;
    var box=$('connect-lines');box.textContent='';st.lines.forEach(function(l){if(l.trim())box.appendChild(line(l.trim()));});
    var f=$('connect-form');f.hidden=!st.question;if(st.question){$('connect-question').textContent=st.question;}
    var msg=$('connect-message');msg.className=st.state;
    msg.textContent=st.state==='running'?(st.question?'':'Waiting for the sign-in…'):st.message||'';
    if(signTimer){clearTimeout(signTimer);signTimer=null;}
    if(st.state==='running'&&!st.question)signTimer=setTimeout(function(){
      fetch('api/targets/'+encodeURIComponent(id)+'/connect',{headers:headers()}).then(function(r){return r.json();}).then(function(s){showSign(id,s);}).catch(function(e){msg.textContent=e.message;});},1500);
    if(st.state==='done')poll();
  }
  function connect(id){
    signing=id;$('connect-panel').hidden=false;$('connect-title').textContent='Connect '+id;
    $('connect-lines').textContent='';$('connect-form').hidden=true;$('connect-message').className='';$('connect-message').textContent='Starting the sign-in…';
    fetch('api/targets/'+encodeURIComponent(id)+'/connect',{method:'POST',headers:headers()}).then(function(r){return r.json();})
      .then(function(s){if(s.error)throw new Error(s.error);showSign(id,s);}).catch(function(e){$('connect-message').textContent=e.message;});
  }
  $('connect-form').addEventListener('submit',function(e){
    e.preventDefault();var id=signing,v=$('connect-input').value;if(!id||!v.trim())return;
    $('connect-input').value='';$('connect-form').hidden=true;$('connect-message').textContent='Checking…';
    var h=headers();h['Content-Type']='application/json';
    fetch('api/targets/'+encodeURIComponent(id)+'/connect/answer',{method:'POST',headers:h,body:JSON.stringify({answer:v})}).then(function(r){return r.json();})
      .then(function(s){if(s.error)throw new Error(s.error);showSign(id,s);}).catch(function(e){$('connect-message').textContent=e.message;});
  });
  $('connect-close').addEventListener('click',function(){signing=null;if(signTimer)clearTimeout(signTimer);$('connect-panel').hidden=true;});
  var timer=null;
  function poll(now){
    if(timer){clearTimeout(timer);timer=null;}
    fetch('api/status',{headers:headers()}).then(function(r){
      if(unauthorized(r))throw new Error('token needed');
      return r.json();}).then(function(s){$('error').textContent='';render(s);})
      .catch(function(e){$('error').textContent=e.message;})
      .finally(function(){if(!timer)timer=setTimeout(poll,2000);});
  }
  poll();
})();
`;
