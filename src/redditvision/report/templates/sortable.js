(function(){
  function key(cell){var v=cell.getAttribute('data-sort');return v===null?cell.textContent:v;}
  function cmp(a,b){var x=parseFloat(a),y=parseFloat(b);
    if(a!==''&&b!==''&&!isNaN(x)&&!isNaN(y)&&isFinite(a)&&isFinite(b)){return x-y;}
    if(a===''&&b!==''){return 1;}if(b===''&&a!==''){return -1;}
    return a.localeCompare(b);}
  document.querySelectorAll('table.sortable').forEach(function(table){
    var heads=table.tHead?table.tHead.rows[0].cells:[];
    Array.prototype.forEach.call(heads,function(th,index){
      th.setAttribute('aria-sort','none');th.tabIndex=0;
      function sort(){
        var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
        Array.prototype.forEach.call(heads,function(h){h.setAttribute('aria-sort','none');});
        th.setAttribute('aria-sort',dir);
        var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(r1,r2){var c=cmp(key(r1.cells[index]),key(r2.cells[index]));
          return dir==='ascending'?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      }
      th.addEventListener('click',sort);
      th.addEventListener('keydown',function(e){if(e.key==='Enter'){sort();}});
    });
  });
  document.body.setAttribute('data-sortable','ready');
})();
