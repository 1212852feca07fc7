/**
 * The status page: one static HTML document with inline CSS and JS, no build chain. It polls
 * `/api/status` every 2 s and draws, per target, the state, backlog, in flight, done and failed
 * counts, an SVG chart of files archived per minute over the last hour and a "Retry failed"
 * button (POST /api/targets/:id/retry-failed); then the files stored under another name (a name
 * collision: wanted and stored path), the recent failures with their reasons and
 * the last files archived. When the server wants a token, the page takes it from `#token=…` in
 * its address or asks for it once, and keeps it in localStorage.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Stagecoach</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#23395d;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:18px;margin:0}#health{font-weight:600}
main{padding:16px;max-width:1100px;margin:auto}
.targets{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.card h2{font-size:16px;margin:0 0 6px;display:flex;justify-content:space-between}
.state{font-size:12px;padding:1px 8px;border-radius:10px;background:#d9f2dd;color:#1c6b2a}
.state.down{background:#f9d6d5;color:#8b1c17}
.nums{display:flex;gap:12px;margin:4px 0}.nums b{display:block;font-size:18px}
.reason{color:#8b1c17;font-size:12px}
svg{width:100%;height:60px;background:#fafbfc;border:1px solid #eee}
button{margin-top:6px}
table{border-collapse:collapse;width:100%;background:#fff;margin-top:6px}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;font-size:13px;word-break:break-all}
#error{color:#8b1c17}
</style></head>
<body>
<header><h1>Stagecoach</h1><span id="health">…</span><span id="error"></span></header>
<main>
<div class="targets" id="targets"></div>
<h3>Stored under another name</h3><table><thead><tr><th>Target</th><th>File</th><th>Wanted</th><th>Stored as</th></tr></thead><tbody id="renamed"></tbody></table>
<h3>Recent failures</h3><table><thead><tr><th>Target</th><th>File</th><th>Reason</th><th>When</th></tr></thead><tbody id="failures"></tbody></table>
<h3>Last files archived</h3><table><thead><tr><th>Target</th><th>File</th><th>Size</th><th>When</th></tr></thead><tbody id="files"></tbody></table>
</main>
<script>
(function(){
  var m=/token=([^&]+)/.exec(location.hash);
  if(m){localStorage.setItem('stagecoach-token',decodeURIComponent(m[1]));history.replaceState(null,'',location.pathname);}
  function headers(){var t=localStorage.getItem('stagecoach-token');return t?{Authorization:'Bearer '+t}:{};}
  function el(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs||{})e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=String(text);return e;}
  function when(ms){return new Date(ms).toLocaleTimeString();}
  function size(n){var u=['B','KB','MB','GB','TB'],i=0;while(n>=1024&&i<u.length-1){n/=1024;i++;}return (i?n.toFixed(1):n)+' '+u[i];}
  function chart(samples){
    var ns='http://www.w3.org/2000/svg',svg=document.createElementNS(ns,'svg');
    svg.setAttribute('viewBox','0 0 600 60');svg.setAttribute('preserveAspectRatio','none');
    var max=1;samples.forEach(function(s){if(s.files>max)max=s.files;});
    var w=600/samples.length;
    samples.forEach(function(s,i){if(!s.files)return;var h=Math.max(1,s.files/max*56);
      var r=document.createElementNS(ns,'rect');r.setAttribute('x',i*w);r.setAttribute('y',60-h);r.setAttribute('width',Math.max(1,w-1));r.setAttribute('height',h);r.setAttribute('fill','#4a78c2');
      var t=document.createElementNS(ns,'title');t.textContent=when(s.at)+': '+s.files+' files';r.appendChild(t);svg.appendChild(r);});
    return svg;
  }
  function retry(id,btn){
    btn.disabled=true;
    fetch('api/targets/'+encodeURIComponent(id)+'/retry-failed',{method:'POST',headers:headers()})
      .then(function(r){return r.json();}).then(function(j){btn.textContent='Requeued '+(j.requeued||0);})
      .catch(function(e){btn.textContent='Error: '+e.message;}).finally(function(){setTimeout(function(){btn.disabled=false;btn.textContent='Retry failed';},3000);});
  }
  function render(s){
    var h=document.getElementById('health');h.textContent=s.health.ok?'healthy':'unhealthy: '+s.health.reasons.map(function(r){return r.reason;}).join('; ');
    var box=document.getElementById('targets');box.textContent='';
    s.targets.forEach(function(t){
      var c=el('div',{'class':'card','data-target':t.id});var h2=el('h2',null,t.id+' ('+t.type+')');
      var st=el('span',{'class':'state'+(t.health.status==='down'?' down':''),'data-field':'state'},t.health.status==='down'?'parked':t.state);h2.appendChild(st);c.appendChild(h2);
      var nums=el('div',{'class':'nums'});
      [['backlog',t.counts.pending],['in flight',t.counts.inFlight],['done',t.counts.done],['failed',t.counts.failed]].forEach(function(p){
        var d=el('div',{'data-field':p[0]});d.appendChild(el('b',null,p[1]));d.appendChild(document.createTextNode(p[0]));nums.appendChild(d);});
      c.appendChild(nums);
      if(t.health.reason)c.appendChild(el('div',{'class':'reason'},t.health.reason));
      c.appendChild(chart(t.throughput));
      var b=el('button',{'data-action':'retry-failed'},'Retry failed');b.onclick=function(){retry(t.id,b);};c.appendChild(b);
      box.appendChild(c);});
    var rn=document.getElementById('renamed');rn.textContent='';
    (s.renamed||[]).forEach(function(d){var tr=el('tr');[d.target,d.root+'/'+d.relPath,d.wanted,d.remotePath].forEach(function(v){tr.appendChild(el('td',null,v));});rn.appendChild(tr);});
    var f=document.getElementById('failures');f.textContent='';
    s.failures.forEach(function(d){var tr=el('tr');[d.target,d.relPath,d.lastError,when(d.updatedAt)].forEach(function(v){tr.appendChild(el('td',null,v));});f.appendChild(tr);});
    var l=document.getElementById('files');l.textContent='';
    s.lastFiles.forEach(function(d){var tr=el('tr');[d.target,d.relPath,size(d.size),when(d.updatedAt)].forEach(function(v){tr.appendChild(el('td',null,v));});l.appendChild(tr);});
  }
  function poll(){
    fetch('api/status',{headers:headers()}).then(function(r){
      if(r.status===401){var t=prompt('Stagecoach token');if(t)localStorage.setItem('stagecoach-token',t);throw new Error('token needed');}
      return r.json();}).then(function(s){document.getElementById('error').textContent='';render(s);})
      .catch(function(e){document.getElementById('error').textContent=e.message;})
      .finally(function(){setTimeout(poll,2000);});
  }
  poll();
})();
</script>
</body></html>
`;
